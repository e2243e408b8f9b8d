"""Roles service: built-in roles read-only, custom roles made of permissions, no escalation."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import Role
from app.services import auth, roles, team
from app.services.accounts import builtin_role
from app.services.permissions import Permission
from tests.factories import make_account, make_user, signed_in_actor, signed_in_token


@pytest.fixture
def people(session):
    account = make_account(session)
    account.plan_code = "pro"
    session.add(account)
    owner = make_user(session, account, "owner@acme.example", "owner")
    admin = make_user(session, account, "admin@acme.example", "admin")
    member = make_user(session, account, "member@acme.example", "member")
    return account, owner, admin, member


def test_builtin_roles_are_listed_first_and_read_only(session, people):
    _, owner, _, member = people
    actor = signed_in_actor(session, owner.email)
    support = roles.create_role(session, actor, name="Support", permissions=["billing.view"])
    roles.create_role(session, actor, name="analyst", permissions=[])

    listed = roles.list_roles(session, actor)
    assert [(r.role.name, r.users) for r in listed.rows] == [
        ("Owner", 1),
        ("Admin", 1),
        ("Member", 1),
        ("analyst", 0),
        ("Support", 0),
    ]
    assert listed.total == 5
    assert listed.rows[3].permissions == {Permission.INFO_VIEW}
    assert roles.get_role(session, actor, support.id).permissions == {Permission.INFO_VIEW, Permission.BILLING_VIEW}
    assert [r.role.name for r in roles.list_roles(session, actor, offset=2, limit=2).rows] == ["Member", "analyst"]

    for key in ("owner", "admin", "member"):
        builtin = builtin_role(session, key)
        with pytest.raises(PermissionDenied, match="Built-in roles cannot be changed"):
            roles.update_role(session, actor, builtin.id, name="Mine", permissions=["info.view"])
        with pytest.raises(PermissionDenied, match="Built-in roles cannot be changed"):
            roles.delete_role(session, actor, builtin.id)
    assert builtin_role(session, "member").permissions == "info.view"


def test_custom_role_is_created_edited_and_deleted(session, people):
    _, owner, _, _ = people
    actor = signed_in_actor(session, owner.email)
    role = roles.create_role(session, actor, name="  Billing   clerk ", permissions=["billing.view", "billing.manage"])
    assert role.name == "Billing clerk" and not role.builtin and role.account_id == actor.account_id
    assert roles.role_permissions(role) == {Permission.INFO_VIEW, Permission.BILLING_VIEW, Permission.BILLING_MANAGE}

    edited = roles.update_role(session, actor, role.id, name="Billing viewer", permissions=["billing.view"])
    assert edited.name == "Billing viewer"
    assert roles.role_permissions(edited) == {Permission.INFO_VIEW, Permission.BILLING_VIEW}

    assert roles.deletion_blocker(session, actor, role.id) == ""
    assert roles.delete_role(session, actor, role.id) == "Billing viewer"
    assert session.get(Role, role.id) is None


def test_a_role_that_may_change_something_may_also_see_it(session, people):
    _, owner, _, _ = people
    role = roles.create_role(
        session, signed_in_actor(session, owner.email), name="Clerk", permissions=["billing.manage", "account.rename"]
    )
    assert roles.role_permissions(role) == {
        Permission.INFO_VIEW,
        Permission.BILLING_MANAGE,
        Permission.BILLING_VIEW,
        Permission.ACCOUNT_RENAME,
        Permission.COMPANY_VIEW,
    }


def test_role_form_errors_name_their_field(session, people):
    _, owner, _, _ = people
    actor = signed_in_actor(session, owner.email)
    roles.create_role(session, actor, name="Support", permissions=[])
    cases = [
        (dict(name="  ", permissions=[]), "name"),
        (dict(name="x" * 101, permissions=[]), "name"),
        (dict(name="support", permissions=[]), "name"),
        (dict(name="admin", permissions=[]), "name"),
        (dict(name="Ops", permissions=["launch.missiles"]), "permissions"),
    ]
    for kwargs, field in cases:
        with pytest.raises((ValidationFailed, Conflict)) as caught:
            roles.create_role(session, actor, **kwargs)
        assert caught.value.field == field, kwargs
    assert roles.list_roles(session, actor).total == 4


def test_renaming_keeps_its_own_name_free(session, people):
    _, owner, _, _ = people
    actor = signed_in_actor(session, owner.email)
    role = roles.create_role(session, actor, name="Support", permissions=[])
    roles.create_role(session, actor, name="Sales", permissions=[])
    assert roles.update_role(session, actor, role.id, name="SUPPORT", permissions=[]).name == "SUPPORT"
    with pytest.raises(Conflict):
        roles.update_role(session, actor, role.id, name="sales", permissions=[])


def test_role_in_use_cannot_be_deleted_until_its_users_move(session, people):
    _, owner, admin, member = people
    actor = signed_in_actor(session, owner.email)
    role = roles.create_role(session, actor, name="Support", permissions=["billing.view"])
    team.change_role(session, actor, member.public_id, role.id)
    team.change_role(session, actor, admin.public_id, role.id)

    assert roles.deletion_blocker(session, actor, role.id) == (
        "2 users have the role Support. Move them to another role on the Team page first."
    )
    with pytest.raises(Conflict, match="2 users have the role Support"):
        roles.delete_role(session, actor, role.id)

    team.change_role(session, actor, admin.public_id, builtin_role(session, "admin").id)
    with pytest.raises(Conflict, match="1 user has the role Support"):
        roles.delete_role(session, actor, role.id)
    team.change_role(session, actor, member.public_id, builtin_role(session, "member").id)
    roles.delete_role(session, actor, role.id)
    assert session.get(Role, role.id) is None


def test_permission_change_applies_on_the_users_next_action(session, people):
    _, owner, _, member = people
    actor = signed_in_actor(session, owner.email)
    role = roles.create_role(session, actor, name="Support", permissions=[])
    team.change_role(session, actor, member.public_id, role.id)
    member_token = signed_in_token(session, member.email)
    assert not auth.actor_for_session_token(session, member_token).can(Permission.BILLING_VIEW)

    roles.update_role(session, actor, role.id, name="Support", permissions=["billing.view"])
    assert auth.actor_for_session_token(session, member_token).can(Permission.BILLING_VIEW)

    roles.update_role(session, actor, role.id, name="Support", permissions=[])
    assert not auth.actor_for_session_token(session, member_token).can(Permission.BILLING_VIEW)


def test_no_privilege_escalation_through_roles(session, people):
    _, owner, admin, member = people
    owner_actor = signed_in_actor(session, owner.email)
    admin_actor = signed_in_actor(session, admin.email)

    with pytest.raises(PermissionDenied, match="Read the audit log") as caught:
        roles.create_role(session, admin_actor, name="Auditor", permissions=["audit.view"])
    assert caught.value.field == "permissions"

    # A role manager without team or billing rights cannot grant those to their own role.
    manager_role = roles.create_role(session, owner_actor, name="Role manager", permissions=["roles.manage"])
    team.change_role(session, owner_actor, member.public_id, manager_role.id)
    manager = signed_in_actor(session, member.email)
    with pytest.raises(PermissionDenied, match="permissions you do not hold"):
        roles.update_role(
            session, manager, manager_role.id, name="Role manager", permissions=["roles.manage", "team.manage"]
        )
    with pytest.raises(PermissionDenied):
        roles.create_role(session, manager, name="Biller", permissions=["billing.manage"])
    assert roles.role_permissions(session.get(Role, manager_role.id)) == {Permission.INFO_VIEW, Permission.ROLES_MANAGE}

    # A role holding more than the editor cannot be edited or deleted by them.
    auditor = roles.create_role(session, owner_actor, name="Auditor", permissions=["audit.view"])
    with pytest.raises(PermissionDenied, match="permissions you do not hold"):
        roles.update_role(session, admin_actor, auditor.id, name="Auditor", permissions=[])
    with pytest.raises(PermissionDenied, match="permissions you do not hold"):
        roles.delete_role(session, admin_actor, auditor.id)
    assert roles.role_permissions(session.get(Role, auditor.id)) == {Permission.INFO_VIEW, Permission.AUDIT_VIEW}


def test_other_accounts_roles_are_not_found(session, people):
    _, owner, _, _ = people
    other_owner = make_user(session, make_account(session, "Other Co"), "owner@other.example", "owner")
    theirs = roles.create_role(
        session, signed_in_actor(session, other_owner.email), name="Theirs", permissions=["billing.view"]
    )
    actor = signed_in_actor(session, owner.email)
    for attempt in (
        lambda: roles.get_role(session, actor, theirs.id),
        lambda: roles.update_role(session, actor, theirs.id, name="Mine", permissions=[]),
        lambda: roles.deletion_blocker(session, actor, theirs.id),
        lambda: roles.delete_role(session, actor, theirs.id),
        lambda: roles.get_role(session, actor, 999_999),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert "Theirs" not in {r.role.name for r in roles.list_roles(session, actor).rows}
    # Names are per account: the same name is free here.
    assert roles.create_role(session, actor, name="Theirs", permissions=[]).name == "Theirs"
    assert session.get(Role, theirs.id).name == "Theirs"


def test_members_are_refused_everywhere(session, people):
    _, owner, _, member = people
    role = roles.create_role(session, signed_in_actor(session, owner.email), name="Support", permissions=[])
    actor = signed_in_actor(session, member.email)
    for attempt in (
        lambda: roles.list_roles(session, actor),
        lambda: roles.get_role(session, actor, role.id),
        lambda: roles.create_role(session, actor, name="Mine", permissions=[]),
        lambda: roles.update_role(session, actor, role.id, name="Mine", permissions=[]),
        lambda: roles.deletion_blocker(session, actor, role.id),
        lambda: roles.delete_role(session, actor, role.id),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert session.exec(select(Role).where(Role.name == "Mine")).first() is None
