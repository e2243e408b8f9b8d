"""People in several accounts: one email and one password, a membership (user) with its own
role in each account; invitations of an existing person, switching, and what stays per account."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.errors import NotFound, PermissionDenied, ValidationFailed
from app.models import OutboxEmail, Person, User
from app.services import auth, profile, team
from app.services.accounts import builtin_role
from app.services.permissions import Permission
from tests.factories import PASSWORD, make_account, make_user, signed_in_actor, signed_in_token

BASE = "http://console"


@pytest.fixture
def two_accounts(session):
    """Ann owns Acme; Bob owns Beta; both committed."""
    acme, beta = make_account(session, "Acme"), make_account(session, "Beta")
    make_user(session, acme, "ann@acme.example", "owner")
    make_user(session, beta, "bob@beta.example", "owner")
    session.commit()
    return acme, beta


def _invite(session, inviter: str, email: str, full_name: str = "Typed Name", role: str = "member") -> User:
    actor = signed_in_actor(session, inviter)
    user = team.invite(
        session, actor, email=email, full_name=full_name, role_id=builtin_role(session, role).id, base_url=BASE
    )
    session.commit()
    return user


def _last_link(session, to: str) -> str:
    message = session.exec(
        select(OutboxEmail).where(OutboxEmail.to_address == to).order_by(OutboxEmail.id.desc())
    ).first()
    return next(line for line in message.body_text.splitlines() if "/accept-invite?token=" in line).split("token=")[1]


def _join(session, email: str, password: str = PASSWORD) -> str:
    """Join by the newest invitation and trade the code: the session token."""
    outcome = auth.join_invitation(session, _last_link(session, email), password)
    assert outcome.error == "", outcome.error
    token = auth.start_session(session, outcome.handoff_code, binding=outcome.binding)
    session.commit()
    assert token
    return token


def _row(session, inviter: str, email: str) -> tuple:
    view = team.team_view(session, signed_in_actor(session, inviter))
    row = next(r for r in view.rows if r.email == email)
    return (row.name, row.status_label, row.role_name, view.seats_text)


def test_the_inviter_sees_the_same_for_an_existing_person_as_for_a_new_email(session, two_accounts):
    _invite(session, "bob@beta.example", "ann@acme.example")
    _invite(session, "bob@beta.example", "nobody@new.example")

    # Ann is a person already (with another name); Beta's owner sees only what they typed.
    assert _row(session, "bob@beta.example", "ann@acme.example")[:3] == ("Typed Name", "Invited", "Member")
    assert _row(session, "bob@beta.example", "nobody@new.example")[:3] == ("Typed Name", "Invited", "Member")
    # Ann's own name change is not shown to an account she has not joined.
    profile.update_name(session, signed_in_actor(session, "ann@acme.example"), "Ann Arbor")
    session.commit()
    assert _row(session, "bob@beta.example", "ann@acme.example")[0] == "Typed Name"


def test_an_invited_person_joins_with_their_password_and_has_one_password(session, two_accounts):
    _invite(session, "bob@beta.example", "ann@acme.example")
    token = _last_link(session, "ann@acme.example")
    assert auth.invitation(session, token).existing
    with pytest.raises(ValidationFailed, match="sign in"):
        auth.accept_invitation(session, token, "another-password-1")
    session.rollback()
    assert auth.join_invitation(session, token, "wrong-password-1").error == auth.WRONG_CREDENTIALS
    session.commit()

    actor = auth.actor_for_session_token(session, _join(session, "ann@acme.example"))

    assert (actor.email, actor.role_key) == ("ann@acme.example", "member")
    assert session.exec(select(Person).where(Person.email == "ann@acme.example")).one().password_hash
    assert len(session.exec(select(Person)).all()) == 2
    assert _row(session, "bob@beta.example", "ann@acme.example")[:2] == ("Ann", "Active")
    # The link is used up.
    assert auth.join_invitation(session, token, PASSWORD).error == auth.INVITATION_INVALID


def test_roles_and_permissions_are_per_membership_and_switching_moves_the_sign_in(session, two_accounts):
    acme, beta = two_accounts
    _invite(session, "bob@beta.example", "ann@acme.example")
    in_beta = auth.actor_for_session_token(session, _join(session, "ann@acme.example"))

    assert in_beta.account_id == beta.id and not in_beta.can(Permission.TEAM_MANAGE)
    with pytest.raises(PermissionDenied):
        team.team_view(session, in_beta)
    listed = auth.memberships(session, in_beta)
    assert [(m.account_name, m.role_name, m.current) for m in listed] == [
        ("Acme", "Owner", False),
        ("Beta", "Member", True),
    ]

    # Sign-in lands in the account used last (Beta, joined last).
    token = signed_in_token(session, "ann@acme.example")
    session.commit()
    actor = auth.actor_for_session_token(session, token)
    assert actor.account_id == beta.id

    outcome = auth.switch_membership(session, actor, listed[0].id)
    new_token = auth.start_session(session, outcome.handoff_code, binding=outcome.binding, previous=token)
    session.commit()
    in_acme = auth.actor_for_session_token(session, new_token)
    assert in_acme.account_id == acme.id and in_acme.can(Permission.TEAM_MANAGE)
    assert {r.email for r in team.team_view(session, in_acme).rows} == {"ann@acme.example"}

    # and the next sign-in lands in Acme now.
    assert auth.actor_for_session_token(session, signed_in_token(session, "ann@acme.example")).account_id == acme.id


def test_switching_in_one_tab_signs_out_no_other_tab_and_signing_out_ends_the_browsers_sessions(session, two_accounts):
    acme, beta = two_accounts
    _invite(session, "bob@beta.example", "ann@acme.example")
    _join(session, "ann@acme.example")
    token = signed_in_token(session, "ann@acme.example")  # the browser's cookie, in Beta (used last)
    elsewhere = signed_in_token(session, "ann@acme.example")  # another device
    session.commit()
    actor = auth.actor_for_session_token(session, token)
    acme_id = next(m.id for m in auth.memberships(session, actor) if not m.current)

    # One tab switches: the browser's cookie becomes the new session, traded with the old one.
    outcome = auth.switch_membership(session, actor, acme_id)
    switched = auth.start_session(session, outcome.handoff_code, binding=outcome.binding, previous=token)
    session.commit()
    assert auth.actor_for_session_token(session, switched).account_id == acme.id
    # A tab still on the old session keeps its account: not signed out.
    assert auth.actor_for_session_token(session, token).account_id == beta.id
    # Your Profile lists the browser once, as the current one, beside the join's and the other device.
    listed = profile.active_sessions(session, auth.actor_for_session_token(session, switched), "UTC")
    assert sorted(s.current for s in listed) == [False, False, True]

    # Signing out in any tab ends the browser's sessions, not the other device's.
    auth.sign_out(session, switched)
    session.commit()
    assert auth.actor_for_session_token(session, switched) is None
    assert auth.actor_for_session_token(session, token) is None
    assert auth.actor_for_session_token(session, elsewhere) is not None

    # A session of another person's in the same browser is not taken as this browser's.
    bob = signed_in_token(session, "bob@beta.example")
    session.commit()
    outcome = auth.sign_in(session, "ann@acme.example", PASSWORD)
    ann = auth.start_session(session, outcome.handoff_code, binding=outcome.binding, previous=bob)
    session.commit()
    auth.sign_out(session, ann)
    session.commit()
    assert auth.actor_for_session_token(session, bob) is not None


def test_the_signed_in_invitee_joins_without_a_password_and_nobody_else_can(session, two_accounts):
    acme, beta = two_accounts
    make_user(session, acme, "cid@acme.example", "member")
    session.commit()
    _invite(session, "bob@beta.example", "ann@acme.example", role="admin")
    token = _last_link(session, "ann@acme.example")
    ann_token = signed_in_token(session, "ann@acme.example")
    session.commit()

    # Someone else signed in in this browser (Cid, or Bob who invited her) cannot use Ann's link.
    for other in ("cid@acme.example", "bob@beta.example"):
        outcome = auth.join_as(session, signed_in_actor(session, other), token)
        assert outcome.error == auth.NOT_THE_INVITEE and not outcome.handoff_code
        session.commit()

    ann = auth.actor_for_session_token(session, ann_token)
    outcome = auth.join_as(session, ann, token)
    assert outcome.error == ""
    in_beta = auth.actor_for_session_token(
        session, auth.start_session(session, outcome.handoff_code, binding=outcome.binding, previous=ann_token)
    )
    session.commit()
    assert (in_beta.account_id, in_beta.role_key) == (beta.id, "admin")
    # Her other tabs stay in Acme; the link is used up.
    assert auth.actor_for_session_token(session, ann_token).account_id == acme.id
    assert auth.join_as(session, ann, token).error == auth.INVITATION_INVALID
    assert [m.account_name for m in auth.memberships(session, in_beta)] == ["Acme", "Beta"]


def test_nobody_switches_into_an_account_they_are_not_an_active_user_of(session, two_accounts):
    _invite(session, "bob@beta.example", "ann@acme.example")  # invited, not joined
    ann = signed_in_actor(session, "ann@acme.example")
    invited = session.exec(select(User).where(User.email == "ann@acme.example", User.status == "invited")).one()
    bob = session.exec(select(User).where(User.email == "bob@beta.example")).one()
    for other in (invited.public_id, bob.public_id, "usr_unknown"):
        with pytest.raises(NotFound):
            auth.switch_membership(session, ann, other)
        session.rollback()
    assert [m.account_name for m in auth.memberships(session, ann)] == ["Acme"]


def test_a_blocked_membership_does_not_stop_signing_in_to_the_other_account(session, two_accounts):
    acme, _ = two_accounts
    _invite(session, "bob@beta.example", "ann@acme.example")
    _join(session, "ann@acme.example")
    in_beta = session.exec(select(User).where(User.email == "ann@acme.example", User.status == "active")).all()
    beta_membership = next(u for u in in_beta if u.account_id != acme.id)
    team.block(session, signed_in_actor(session, "bob@beta.example"), beta_membership.public_id)
    session.commit()

    assert auth.actor_for_session_token(session, signed_in_token(session, "ann@acme.example")).account_id == acme.id


def test_profile_changes_apply_to_the_person_in_every_account(session, two_accounts):
    _invite(session, "bob@beta.example", "ann@acme.example")
    beta_token = _join(session, "ann@acme.example")
    # A second sign-in (it lands in Beta, used last), switched to Acme.
    second_token = signed_in_token(session, "ann@acme.example")
    second = auth.actor_for_session_token(session, second_token)
    acme_id = next(m.id for m in auth.memberships(session, second) if not m.current)
    outcome = auth.switch_membership(session, second, acme_id)
    acme_actor = auth.actor_for_session_token(
        session, auth.start_session(session, outcome.handoff_code, binding=outcome.binding, previous=second_token)
    )
    session.commit()
    assert acme_actor.account_id != second.account_id

    profile.update_name(session, acme_actor, "Ann Arbor")
    ended = profile.change_password(
        session, acme_actor, current=PASSWORD, new="a-new-passphrase", confirm="a-new-passphrase"
    )
    session.commit()

    assert ended == 1 and auth.actor_for_session_token(session, beta_token) is None
    names = session.exec(select(User.full_name).where(User.email == "ann@acme.example")).all()
    assert names == ["Ann Arbor", "Ann Arbor"]
    assert auth.sign_in(session, "ann@acme.example", "a-new-passphrase").error == ""


def test_removing_a_person_from_one_account_keeps_them_in_the_other(session, two_accounts):
    acme, _ = two_accounts
    _invite(session, "bob@beta.example", "ann@acme.example")
    _join(session, "ann@acme.example")
    beta_row = session.exec(select(User).where(User.email == "ann@acme.example", User.account_id != acme.id)).one()
    team.remove(session, signed_in_actor(session, "bob@beta.example"), beta_row.public_id)
    session.commit()
    assert auth.actor_for_session_token(session, signed_in_token(session, "ann@acme.example")).account_id == acme.id

    # A person who is nobody's user any more is forgotten.
    team.revoke_invitation(
        session,
        signed_in_actor(session, "bob@beta.example"),
        _invite(session, "bob@beta.example", "x@new.example").public_id,
    )
    session.commit()
    assert session.exec(select(Person).where(Person.email == "x@new.example")).first() is None
