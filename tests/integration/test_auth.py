from datetime import timedelta

import pytest
from sqlmodel import select

from app.errors import ValidationFailed
from app.models import AuthSession, OutboxEmail, utcnow
from app.services import auth
from app.services.permissions import Permission
from tests.factories import PASSWORD, make_account, make_user, signed_in_token


def test_sign_in_gives_a_session_with_the_role_permissions(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com", "owner")
    make_user(session, account, "member@example.com", "member")

    owner = auth.actor_for_session_token(session, signed_in_token(session, "Owner@Example.com "))
    member = auth.actor_for_session_token(session, signed_in_token(session, "member@example.com"))

    assert owner.role_name == "Owner" and owner.can(Permission.BILLING_MANAGE)
    assert member.role_name == "Member" and not member.can(Permission.BILLING_VIEW)
    assert member.can(Permission.INFO_VIEW)


def test_session_token_is_stored_only_as_a_hash(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    token = signed_in_token(session, "owner@example.com")
    stored = session.exec(select(AuthSession)).one()
    assert token not in stored.token_hash and len(stored.token_hash) == 64


def test_wrong_password_is_refused_with_a_clear_error(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    assert auth.sign_in(session, "owner@example.com", "nope").error == "Wrong email or password."
    assert auth.sign_in(session, "nobody@example.com", "nope").error == "Wrong email or password."


def test_sign_in_is_throttled_after_repeated_failures(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    for _ in range(5):
        assert auth.sign_in(session, "owner@example.com", "bad-password").error == auth.WRONG_CREDENTIALS
    locked = auth.sign_in(session, "owner@example.com", PASSWORD)
    assert "Too many failed sign-in attempts" in locked.error and locked.handoff_code == ""
    later = utcnow() + timedelta(minutes=16)
    assert auth.sign_in(session, "owner@example.com", PASSWORD, now=later).error == ""


def test_handoff_code_works_once(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    code = auth.sign_in(session, "owner@example.com", PASSWORD).handoff_code
    assert auth.start_session(session, code) is not None
    assert auth.start_session(session, code) is None


def test_handoff_code_expires(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    code = auth.sign_in(session, "owner@example.com", PASSWORD).handoff_code
    assert auth.start_session(session, code, now=utcnow() + timedelta(minutes=2)) is None


def test_sign_out_and_expiry_end_the_session(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    token = signed_in_token(session, "owner@example.com")
    assert auth.actor_for_session_token(session, token, now=utcnow() + timedelta(days=15)) is None
    auth.sign_out(session, token)
    assert auth.actor_for_session_token(session, token) is None


def test_blocking_a_user_ends_their_session_at_once(session):
    account = make_account(session)
    user = make_user(session, account, "admin@example.com", "admin")
    token = signed_in_token(session, "admin@example.com")
    user.status = "blocked"
    session.add(user)
    session.flush()
    assert auth.actor_for_session_token(session, token) is None
    assert "blocked" in auth.sign_in(session, "admin@example.com", PASSWORD).error


def test_password_reset_by_emailed_link(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    old_token = signed_in_token(session, "owner@example.com")
    auth.request_password_reset(session, "owner@example.com", base_url="http://console")
    email = session.exec(select(OutboxEmail)).one()
    link = next(line for line in email.body_text.splitlines() if "/reset-password?token=" in line)
    secret = link.split("token=", 1)[1]

    with pytest.raises(ValidationFailed):
        auth.reset_password(session, secret, "short")
    auth.reset_password(session, secret, "a-brand-new-passphrase")

    assert auth.actor_for_session_token(session, old_token) is None
    assert auth.sign_in(session, "owner@example.com", PASSWORD).error == auth.WRONG_CREDENTIALS
    assert auth.sign_in(session, "owner@example.com", "a-brand-new-passphrase").error == ""
    with pytest.raises(ValidationFailed):
        auth.reset_password(session, secret, "another-new-passphrase")


def test_reset_for_unknown_email_sends_nothing(session):
    auth.request_password_reset(session, "ghost@example.com", base_url="http://console")
    assert session.exec(select(OutboxEmail)).all() == []


def test_invited_user_sets_a_password_and_signs_in(session):
    account = make_account(session)
    invited = make_user(session, account, "new@example.com", "admin", password=None, status="invited")
    assert auth.sign_in(session, "new@example.com", "whatever-pass").error == auth.WRONG_CREDENTIALS
    link = auth.issue_invitation(session, invited, base_url="http://console")
    secret = link.split("token=", 1)[1]
    assert auth.invitation_user(session, secret).email == "new@example.com"

    with pytest.raises(ValidationFailed, match="email"):
        auth.accept_invitation(session, secret, "new@example.com-1234")
    auth.accept_invitation(session, secret, "chosen-passphrase", full_name="New Person")

    actor = auth.actor_for_session_token(session, signed_in_token(session, "new@example.com", "chosen-passphrase"))
    assert actor.role_key == "admin" and actor.full_name == "New Person"
    with pytest.raises(ValidationFailed):
        auth.accept_invitation(session, secret, "chosen-passphrase")
