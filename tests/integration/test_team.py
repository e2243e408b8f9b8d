"""Team service: invitations and seats, block/unblock/remove, role changes, and who may do what."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.models import AuthSession, OutboxEmail, User, UserToken
from app.services import auth, roles, team
from app.services.accounts import builtin_role
from app.services.permissions import Permission
from tests.factories import PASSWORD, make_account, make_user, signed_in_actor, signed_in_token

BASE = "http://console"


def _role_id(session, key: str) -> int:
    return builtin_role(session, key).id


@pytest.fixture
def team_account(session):
    account = make_account(session)
    account.plan_code = "basic"  # 3 seats
    session.add(account)
    owner = make_user(session, account, "owner@acme.example", "owner")
    admin = make_user(session, account, "admin@acme.example", "admin")
    member = make_user(session, account, "member@acme.example", "member")
    return account, owner, admin, member


def _invite(session, actor, email, role_key="member", full_name="New Person"):
    return team.invite(
        session, actor, email=email, full_name=full_name, role_id=_role_id(session, role_key), base_url=BASE
    )


def _accept(session, email: str, password: str = PASSWORD) -> User:
    message = session.exec(
        select(OutboxEmail).where(OutboxEmail.to_address == email).order_by(OutboxEmail.id.desc())
    ).first()
    link = next(line for line in message.body_text.splitlines() if "/accept-invite?token=" in line)
    return auth.accept_invitation(session, link.split("token=")[1], password)


def test_invitation_emails_an_expiring_link_that_makes_the_user_active_with_the_role(session, team_account):
    _, owner, _, member = team_account
    assert team.remove(session, signed_in_actor(session, owner.email), member.public_id) == "member@acme.example"

    invited = _invite(
        session, signed_in_actor(session, owner.email), " New.Person@Example.COM ", "admin", "  Nina   New "
    )

    assert (invited.email, invited.full_name, invited.status) == ("new.person@example.com", "Nina New", "invited")
    message = session.exec(select(OutboxEmail).where(OutboxEmail.to_address == "new.person@example.com")).one()
    assert f"{BASE}/accept-invite?token=" in message.body_text and "valid for 7 days" in message.body_text
    token = session.exec(select(UserToken).where(UserToken.user_id == invited.id)).one()
    assert token.purpose == "invite" and token.expires_at > token.created_at
    # An invited user has no password until they accept.
    assert auth.sign_in(session, invited.email, PASSWORD).handoff_code == ""

    _accept(session, "new.person@example.com")
    actor = signed_in_actor(session, invited.email)
    assert actor.role_name == "Admin" and actor.can(Permission.TEAM_MANAGE)


def test_invitation_needs_a_free_seat_and_blocked_users_free_theirs(session, team_account):
    _, owner, _, member = team_account
    actor = signed_in_actor(session, owner.email)
    assert team.seats(session, actor) == team.Seats(used=3, limit=3)

    with pytest.raises(Conflict, match="All 3 seats of your Basic plan are in use"):
        _invite(session, actor, "fourth@acme.example")
    assert session.exec(select(User).where(User.email == "fourth@acme.example")).first() is None
    assert session.exec(select(OutboxEmail)).first() is None

    team.block(session, actor, member.public_id)
    assert team.seats(session, actor).used == 2
    invited = _invite(session, actor, "fourth@acme.example")
    # Invited users hold a seat too, so the blocked member cannot come back now.
    with pytest.raises(Conflict, match="seats"):
        team.unblock(session, actor, member.public_id)
    team.revoke_invitation(session, actor, invited.public_id)
    assert team.unblock(session, actor, member.public_id).status == "active"


def test_plan_without_seat_limit_lets_anyone_be_invited(session, team_account):
    account, owner, _, _ = team_account
    account.plan_code = "custom"
    session.add(account)
    actor = signed_in_actor(session, owner.email)
    for n in range(3):
        _invite(session, actor, f"extra{n}@acme.example")
    assert team.seats(session, actor) == team.Seats(used=6, limit=None)


def test_invitation_form_errors_name_their_field_and_change_nothing(session, team_account):
    account, owner, _, _ = team_account
    account.plan_code = "pro"
    session.add(account)
    actor = signed_in_actor(session, owner.email)
    cases = [
        (dict(email="not-an-email", full_name="X", role_id=_role_id(session, "member")), "email"),
        (dict(email="", full_name="X", role_id=_role_id(session, "member")), "email"),
        (dict(email="x@acme.example", full_name="   ", role_id=_role_id(session, "member")), "full_name"),
        (dict(email="x@acme.example", full_name="X", role_id=None), "role"),
        (dict(email="x@acme.example", full_name="X", role_id=999_999), "role"),
        (dict(email="MEMBER@acme.example", full_name="X", role_id=_role_id(session, "member")), "email"),
    ]
    for kwargs, field in cases:
        with pytest.raises((ValidationFailed, Conflict)) as caught:
            team.invite(session, actor, base_url=BASE, **kwargs)
        assert caught.value.field == field, kwargs
    assert session.exec(select(OutboxEmail)).first() is None
    assert team.seats(session, actor).used == 3


def test_resend_replaces_the_link_and_revoke_kills_it(session, team_account):
    account, owner, _, _ = team_account
    account.plan_code = "pro"
    session.add(account)
    actor = signed_in_actor(session, owner.email)
    invited = _invite(session, actor, "late@acme.example")
    first_link = session.exec(select(OutboxEmail)).one().body_text
    first_token = first_link.split("token=")[1].split()[0]

    team.resend_invitation(session, actor, invited.public_id, base_url=BASE)
    assert len(session.exec(select(OutboxEmail).where(OutboxEmail.to_address == "late@acme.example")).all()) == 2
    assert auth.invitation_user(session, first_token) is None
    _accept(session, "late@acme.example")
    with pytest.raises(ValidationFailed, match="already joined"):
        team.resend_invitation(session, actor, invited.public_id, base_url=BASE)

    other = _invite(session, actor, "never@acme.example")
    token = (
        session.exec(select(OutboxEmail).where(OutboxEmail.to_address == "never@acme.example"))
        .one()
        .body_text.split("token=")[1]
        .split()[0]
    )
    assert team.revoke_invitation(session, actor, other.public_id) == "never@acme.example"
    assert auth.invitation_user(session, token) is None
    assert session.exec(select(User).where(User.email == "never@acme.example")).first() is None
    with pytest.raises(ValidationFailed, match="already joined"):
        team.revoke_invitation(session, actor, invited.public_id)


def test_block_ends_the_users_sessions_at_once_and_unblock_lets_them_back(session, team_account):
    _, owner, admin, _ = team_account
    admin_token = signed_in_token(session, admin.email)
    assert auth.actor_for_session_token(session, admin_token) is not None

    team.block(session, signed_in_actor(session, owner.email), admin.public_id)

    assert auth.actor_for_session_token(session, admin_token) is None
    assert "blocked" in auth.sign_in(session, admin.email, PASSWORD).error
    assert all(
        s.revoked_at is not None for s in session.exec(select(AuthSession).where(AuthSession.user_id == admin.id))
    )

    team.unblock(session, signed_in_actor(session, owner.email), admin.public_id)
    assert auth.actor_for_session_token(session, signed_in_token(session, admin.email)).role_name == "Admin"
    # The session that was ended stays ended.
    assert auth.actor_for_session_token(session, admin_token) is None


def test_remove_deletes_the_user_and_their_sessions(session, team_account):
    _, owner, _, member = team_account
    token = signed_in_token(session, member.email)
    team.remove(session, signed_in_actor(session, owner.email), member.public_id)
    assert auth.actor_for_session_token(session, token) is None
    assert session.exec(select(User).where(User.email == member.email)).first() is None
    assert session.exec(select(AuthSession).where(AuthSession.user_id == member.id)).first() is None


def test_the_last_owner_cannot_be_blocked_removed_or_demoted(session, team_account):
    account, owner, _, _ = team_account
    account.plan_code = "pro"
    session.add(account)
    owner_actor = signed_in_actor(session, owner.email)
    # A custom role holding every permission may act on owners; it still cannot drop the last one.
    co_owner_role = roles.create_role(session, owner_actor, name="Co-owner", permissions=[p.value for p in Permission])
    co_owner = make_user(session, account, "co@acme.example", "member")
    team.change_role(session, owner_actor, co_owner.public_id, co_owner_role.id)
    co_actor = signed_in_actor(session, co_owner.email)

    for attempt in (
        lambda: team.block(session, co_actor, owner.public_id),
        lambda: team.remove(session, co_actor, owner.public_id),
        lambda: team.change_role(session, co_actor, owner.public_id, _role_id(session, "admin")),
    ):
        with pytest.raises(Conflict, match="last Owner"):
            attempt()
    with pytest.raises(PermissionDenied, match="yourself"):
        team.block(session, owner_actor, owner.public_id)
    with pytest.raises(PermissionDenied, match="yourself"):
        team.remove(session, owner_actor, owner.public_id)
    assert session.get(User, owner.id).status == "active"
    assert signed_in_actor(session, owner.email).role_name == "Owner"

    # With a second active owner, the first may be demoted; then the second is the last one.
    second = make_user(session, account, "second@acme.example", "owner")
    team.change_role(session, co_actor, owner.public_id, _role_id(session, "admin"))
    assert signed_in_actor(session, owner.email).role_name == "Admin"
    with pytest.raises(Conflict, match="last Owner"):
        team.block(session, co_actor, second.public_id)


def test_a_blocked_owner_does_not_count_as_an_owner(session, team_account):
    account, owner, _, member = team_account
    account.plan_code = "pro"
    session.add(account)
    owner_actor = signed_in_actor(session, owner.email)
    second = make_user(session, account, "second@acme.example", "owner")
    everything = roles.create_role(session, owner_actor, name="Co-owner", permissions=[p.value for p in Permission])
    team.change_role(session, owner_actor, member.public_id, everything.id)
    co_actor = signed_in_actor(session, member.email)

    team.block(session, co_actor, second.public_id)
    with pytest.raises(Conflict, match="last Owner"):
        team.block(session, co_actor, owner.public_id)
    with pytest.raises(Conflict, match="last Owner"):
        team.remove(session, co_actor, owner.public_id)

    team.unblock(session, co_actor, second.public_id)
    assert team.block(session, co_actor, owner.public_id).status == "blocked"


def test_admins_cannot_touch_owners_or_give_roles_above_their_own(session, team_account):
    account, owner, admin, member = team_account
    account.plan_code = "pro"
    session.add(account)
    admin_actor = signed_in_actor(session, admin.email)

    with pytest.raises(PermissionDenied, match="permissions you do not hold"):
        team.block(session, admin_actor, owner.public_id)
    with pytest.raises(PermissionDenied, match="permissions you do not hold"):
        team.remove(session, admin_actor, owner.public_id)
    with pytest.raises(PermissionDenied) as caught:
        team.change_role(session, admin_actor, member.public_id, _role_id(session, "owner"))
    assert caught.value.field == "role"
    with pytest.raises(PermissionDenied) as caught:
        _invite(session, admin_actor, "boss@acme.example", "owner")
    assert caught.value.field == "role"
    assert {r.key for r in team.assignable_roles(session, admin_actor) if r.builtin} == {"admin", "member"}
    assert {r.key for r in team.assignable_roles(session, signed_in_actor(session, owner.email)) if r.builtin} == {
        "owner",
        "admin",
        "member",
    }

    # Within their own permissions an admin manages the team.
    team.change_role(session, admin_actor, member.public_id, _role_id(session, "admin"))
    assert signed_in_actor(session, member.email).role_name == "Admin"
    assert _invite(session, admin_actor, "helper@acme.example", "member").status == "invited"


def test_nobody_changes_their_own_role(session, team_account):
    _, owner, admin, _ = team_account
    for user, target in ((admin, "owner"), (admin, "member"), (owner, "admin")):
        with pytest.raises(PermissionDenied, match="your own role"):
            team.change_role(session, signed_in_actor(session, user.email), user.public_id, _role_id(session, target))
    assert signed_in_actor(session, admin.email).role_name == "Admin"
    assert signed_in_actor(session, owner.email).role_name == "Owner"


def test_role_change_applies_on_the_users_next_action(session, team_account):
    _, owner, _, member = team_account
    member_token = signed_in_token(session, member.email)
    assert not auth.actor_for_session_token(session, member_token).can(Permission.TEAM_MANAGE)

    team.change_role(session, signed_in_actor(session, owner.email), member.public_id, _role_id(session, "admin"))

    # Same session, no new sign-in: the next action sees the new role.
    assert auth.actor_for_session_token(session, member_token).can(Permission.TEAM_MANAGE)


def test_other_accounts_users_and_roles_are_not_found(session, team_account):
    _, owner, _, member = team_account
    other_account = make_account(session, "Other Co")
    other_owner = make_user(session, other_account, "owner@other.example", "owner")
    other_actor = signed_in_actor(session, other_owner.email)
    other_role = roles.create_role(session, other_actor, name="Other support", permissions=["billing.view"])
    actor = signed_in_actor(session, owner.email)

    for attempt in (
        lambda: team.block(session, actor, other_owner.public_id),
        lambda: team.unblock(session, actor, other_owner.public_id),
        lambda: team.remove(session, actor, other_owner.public_id),
        lambda: team.change_role(session, actor, other_owner.public_id, _role_id(session, "member")),
        lambda: team.resend_invitation(session, actor, other_owner.public_id, base_url=BASE),
        lambda: team.revoke_invitation(session, actor, other_owner.public_id),
        lambda: team.block(session, actor, "usr_DOESNOTEXIST"),
    ):
        with pytest.raises(NotFound):
            attempt()
    with pytest.raises(ValidationFailed) as caught:
        team.change_role(session, actor, member.public_id, other_role.id)
    assert caught.value.field == "role"
    assert other_role.id not in {r.id for r in team.assignable_roles(session, actor)}
    assert {m.user.email for m in team.list_members(session, actor).rows} == {
        "owner@acme.example",
        "admin@acme.example",
        "member@acme.example",
    }
    assert session.get(User, other_owner.id).status == "active"


def test_members_are_refused_everywhere(session, team_account):
    _, owner, _, member = team_account
    actor = signed_in_actor(session, member.email)
    for attempt in (
        lambda: team.seats(session, actor),
        lambda: team.list_members(session, actor),
        lambda: team.assignable_roles(session, actor),
        lambda: _invite(session, actor, "x@acme.example"),
        lambda: team.resend_invitation(session, actor, owner.public_id, base_url=BASE),
        lambda: team.revoke_invitation(session, actor, owner.public_id),
        lambda: team.block(session, actor, owner.public_id),
        lambda: team.unblock(session, actor, owner.public_id),
        lambda: team.remove(session, actor, owner.public_id),
        lambda: team.change_role(session, actor, owner.public_id, _role_id(session, "member")),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert session.get(User, owner.id).status == "active"


def test_members_page_in_order_with_a_total(session, team_account):
    account, owner, _, _ = team_account
    account.plan_code = "pro"
    session.add(account)
    actor = signed_in_actor(session, owner.email)
    for n in range(2):
        _invite(session, actor, f"p{n}@acme.example")
    first = team.list_members(session, actor, offset=0, limit=3)
    second = team.list_members(session, actor, offset=3, limit=3)
    assert first.total == second.total == 5
    assert [m.user.email for m in first.rows + second.rows] == [
        "owner@acme.example",
        "admin@acme.example",
        "member@acme.example",
        "p0@acme.example",
        "p1@acme.example",
    ]
    assert second.rows[0].role.name == "Member" and second.rows[0].user.status == "invited"


def _race(engine, calls) -> tuple[int, list[BaseException]]:
    """Run each call in its own transaction, all at once; (how many committed, what was refused)."""
    start = threading.Barrier(len(calls))
    done: list[int] = []
    refused: list[BaseException] = []
    lock = threading.Lock()

    def worker(call) -> None:
        start.wait()
        try:
            with Session(engine, expire_on_commit=False) as s:
                call(s)
                s.commit()
            with lock:
                done.append(1)
        except (Conflict, PermissionDenied, NotFound, ValidationFailed) as exc:
            with lock:
                refused.append(exc)

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(done), refused


def test_simultaneous_invitations_never_exceed_the_seats(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as s:
        account = make_account(s)
        account.plan_code = "basic"
        s.add(account)
        owner = make_user(s, account, "owner@acme.example", "owner")
        actor = signed_in_actor(s, owner.email)
        member_role = _role_id(s, "member")
        s.commit()

    def invite(n):
        return lambda s: team.invite(
            s, actor, email=f"racer{n}@acme.example", full_name="Racer", role_id=member_role, base_url=BASE
        )

    committed, refused = _race(pg_engine, [invite(n) for n in range(8)])
    assert committed == 2 and len(refused) == 6
    assert all("seats" in exc.message for exc in refused)
    with Session(pg_engine) as s:
        assert team.seats(s, actor) == team.Seats(used=3, limit=3)


def test_two_owners_blocking_each_other_at_once_leave_one_owner(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as s:
        account = make_account(s)
        first = make_user(s, account, "first@acme.example", "owner")
        second = make_user(s, account, "second@acme.example", "owner")
        first_actor, second_actor = signed_in_actor(s, first.email), signed_in_actor(s, second.email)
        s.commit()

    committed, refused = _race(
        pg_engine,
        [
            lambda s: team.block(s, first_actor, second.public_id),
            lambda s: team.block(s, second_actor, first.public_id),
        ],
    )
    assert committed == 1 and "last Owner" in refused[0].message
    with Session(pg_engine) as s:
        statuses = sorted(s.get(User, u.id).status for u in (first, second))
    assert statuses == ["active", "blocked"]
