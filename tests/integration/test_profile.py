"""Your Profile: each user changes their own name, picture and password, sees their active
sessions and signs out the others; a password change ends every other session at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.api import create_api, files
from app.errors import NotAuthenticated, ValidationFailed
from app.models import Account, AuditEvent, AuthSession, OutboxEmail, Person, User, utcnow
from app.services import auth, profile
from app.services.passwords import verify_password
from app.services.tokens import sha256_hex
from tests.factories import PASSWORD, PNG, make_account, make_user

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _sign_in(session, email: str, user_agent: str = "", ip: str = "") -> str:
    outcome = auth.sign_in(session, email, PASSWORD)
    token = auth.start_session(
        session, outcome.handoff_code, binding=outcome.binding, user_agent=user_agent, ip_address=ip
    )
    session.commit()
    return token


def _actor(session, token: str):
    return auth.actor_for_session_token(session, token)


@pytest.fixture
def member(session):
    account = make_account(session)
    make_user(session, account, "mia.member@example.com", "member")
    session.commit()
    return "mia.member@example.com"


def test_a_member_changes_their_own_name(session, member):
    actor = _actor(session, _sign_in(session, member))
    profile.update_name(session, actor, "  Mia   Müller ")
    session.commit()
    assert session.exec(select(User.full_name).where(User.email == member)).one() == "Mia Müller"
    with pytest.raises(ValidationFailed) as refused:
        profile.update_name(session, actor, "   ")
    assert refused.value.field == "full_name"


def test_saving_the_same_name_again_logs_no_change(session, member):
    actor = _actor(session, _sign_in(session, member))
    profile.update_name(session, actor, "Mia Müller")
    profile.update_name(session, actor, " Mia  Müller")
    session.commit()
    logged = session.exec(select(AuditEvent.summary).where(AuditEvent.action == "profile.name")).all()
    assert logged == ["Changed their name to Mia Müller"]


def test_a_picture_is_checked_by_its_content_and_served_only_to_its_owner(session, engine, member):
    token = _sign_in(session, member)
    actor = _actor(session, token)
    with pytest.raises(ValidationFailed) as refused:
        profile.save_picture(session, actor, b"GIF89a not an accepted image")
    assert refused.value.field == "picture"
    with pytest.raises(ValidationFailed, match="larger than 1 MB"):
        profile.save_picture(session, actor, PNG + b"\x00" * (1024 * 1024))
    assert profile.profile(session, actor).picture_url == ""

    profile.save_picture(session, actor, PNG)
    session.commit()
    url = profile.profile(session, actor).picture_url
    assert url.startswith("/api/profile/picture?v=")
    session.commit()  # ends the read, so SQLite's write lock is free for the request below

    api = create_api()
    api.dependency_overrides[files.files_engine] = lambda: engine
    client = TestClient(api)
    assert client.get(url).status_code == 401
    client.cookies.set(auth.SESSION_COOKIE, token)
    response = client.get(url)
    assert (response.status_code, response.headers["content-type"], response.content) == (200, "image/png", PNG)
    # Another user (of another account) gets their own picture, or none: never this one.
    other_account = make_account(session, "Other Co")
    make_user(session, other_account, "olga@example.com", "owner")
    session.commit()
    client.cookies.set(auth.SESSION_COOKIE, _sign_in(session, "olga@example.com"))
    assert client.get(url).status_code == 404


def test_changing_the_password_needs_the_current_one_and_ends_every_other_session(session, member):
    here = _sign_in(session, member, CHROME_MAC)
    elsewhere = _sign_in(session, member, FIREFOX_LINUX)
    actor = _actor(session, here)

    with pytest.raises(ValidationFailed) as wrong:
        profile.change_password(
            session, actor, current="not-my-password", new="a-brand-new-phrase", confirm="a-brand-new-phrase"
        )
    assert wrong.value.field == "current_password"
    with pytest.raises(ValidationFailed) as short:
        profile.change_password(session, actor, current=PASSWORD, new="short", confirm="short")
    assert (short.value.field, short.value.message) == ("new_password", "Use at least 10 characters.")
    with pytest.raises(ValidationFailed) as with_email:
        profile.change_password(session, actor, current=PASSWORD, new="mia.member-2026!", confirm="mia.member-2026!")
    assert with_email.value.message == "The password must not contain your email address."
    with pytest.raises(ValidationFailed) as differ:
        profile.change_password(
            session, actor, current=PASSWORD, new="a-brand-new-phrase", confirm="a-brand-new-phrase!"
        )
    assert differ.value.field == "confirm_password"
    with pytest.raises(ValidationFailed) as same:
        profile.change_password(session, actor, current=PASSWORD, new=PASSWORD, confirm=PASSWORD)
    assert (same.value.field, same.value.message) == (
        "new_password",
        "Choose a password different from your current one.",
    )
    session.rollback()
    assert _actor(session, elsewhere) is not None, "a refused change ended a session"

    ended = profile.change_password(
        session, actor, current=PASSWORD, new="a-brand-new-phrase", confirm="a-brand-new-phrase"
    )
    session.commit()
    assert ended == 1
    assert _actor(session, elsewhere) is None
    assert _actor(session, here) is not None
    person = session.exec(select(Person).where(Person.email == member)).one()
    assert verify_password("a-brand-new-phrase", person.password_hash)
    assert auth.sign_in(session, member, PASSWORD).error == auth.WRONG_CREDENTIALS


def test_active_sessions_name_the_device_and_the_current_one_and_others_can_be_signed_out(session, member):
    here = _sign_in(session, member, CHROME_MAC, "203.0.113.7")
    elsewhere = _sign_in(session, member, FIREFOX_LINUX, "198.51.100.2")
    ended = _sign_in(session, member, FIREFOX_LINUX)
    auth.sign_out(session, ended)
    expired = _sign_in(session, member, FIREFOX_LINUX)
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == sha256_hex(expired))).one()
    row.expires_at = utcnow() - timedelta(minutes=1)
    session.add(row)
    session.commit()
    actor = _actor(session, here)

    sessions = profile.active_sessions(session, actor, "Europe/Berlin")
    assert sorted((s.device, s.ip_address, s.current) for s in sessions) == [
        ("Chrome on macOS", "203.0.113.7", True),
        ("Firefox on Linux", "198.51.100.2", False),
    ]
    assert all(s.last_seen.endswith(("CET", "CEST")) for s in sessions)

    assert profile.sign_out_other_sessions(session, actor) == 1
    session.commit()
    assert _actor(session, elsewhere) is None
    assert [s.device for s in profile.active_sessions(session, actor, "UTC")] == ["Chrome on macOS"]


def test_signing_out_others_never_touches_another_users_sessions(session, member):
    account = session.exec(select(User).where(User.email == member)).one().account_id
    make_user(session, session.get(Account, account), "colleague@example.com", "admin")
    session.commit()
    colleague = _sign_in(session, "colleague@example.com")
    actor = _actor(session, _sign_in(session, member))
    profile.sign_out_other_sessions(session, actor)
    session.commit()
    assert _actor(session, colleague) is not None


def test_a_signed_out_visitor_has_no_profile(session):
    with pytest.raises(NotAuthenticated):
        profile.profile(session, None)


def test_the_current_password_check_is_throttled_like_sign_in(session, member):
    actor = _actor(session, _sign_in(session, member))
    for _ in range(5):
        with pytest.raises(ValidationFailed, match="not correct"):
            profile.change_password(
                session, actor, current="a-guess-1234", new="a-brand-new-phrase", confirm="a-brand-new-phrase"
            )
        session.rollback()  # as the handler's transaction is
    with pytest.raises(ValidationFailed, match="Too many wrong passwords") as locked:
        profile.change_password(
            session, actor, current=PASSWORD, new="a-brand-new-phrase", confirm="a-brand-new-phrase"
        )
    assert locked.value.field == "current_password"
    session.rollback()
    later = utcnow() + timedelta(minutes=16)
    profile.change_password(
        session, actor, current=PASSWORD, new="a-brand-new-phrase", confirm="a-brand-new-phrase", now=later
    )


def test_a_password_change_ends_every_reset_link(session, member):
    actor = _actor(session, _sign_in(session, member))
    auth.request_password_reset(session, member, base_url="http://console")
    link = session.exec(select(OutboxEmail)).one().body_text
    secret = link.split("token=", 1)[1].split()[0]
    profile.change_password(session, actor, current=PASSWORD, new="a-brand-new-phrase", confirm="a-brand-new-phrase")
    session.commit()
    with pytest.raises(ValidationFailed, match="invalid or has expired"):
        auth.reset_password(session, secret, "an-attackers-phrase")
