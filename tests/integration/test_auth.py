from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.api import auth_routes, create_api
from app.db import transaction
from app.errors import ValidationFailed
from app.models import AuthAttempt, AuthSession, OutboxEmail, utcnow
from app.services import auth, passwords
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


def _fail(session, email: str, *, ip: str = "203.0.113.9", times: int = 1, now=None) -> None:
    """Failed sign-ins, each a request of its own (its transaction ends, as a handler's does)."""
    for _ in range(times):
        assert auth.sign_in(session, email, "bad-password", ip_address=ip, now=now).error == auth.WRONG_CREDENTIALS
        session.commit()


def test_sign_in_is_throttled_per_email_and_address_without_locking_the_owner_out_elsewhere(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    _fail(session, "owner@example.com", ip="203.0.113.9", times=5)
    locked = auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="203.0.113.9")
    assert "Too many failed sign-in attempts" in locked.error and locked.handoff_code == ""
    # The owner, elsewhere, is not locked out by the attacker's failures.
    assert auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="198.51.100.7").error == ""
    later = utcnow() + timedelta(minutes=16)
    assert auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="203.0.113.9", now=later).error == ""


def test_one_address_cannot_try_passwords_across_many_emails(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    for number in range(30):
        _fail(session, f"user{number}@example.com", ip="2001:db8:7:7::1")
    # The whole /64 of an IPv6 client counts as one address.
    refused = auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="2001:db8:7:7::abcd")
    assert "Too many failed sign-in attempts" in refused.error
    assert auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="2001:db8:7:8::1").error == ""


def test_an_unknown_email_costs_the_same_password_check_as_a_known_one(session, monkeypatch):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    context = passwords._context()
    checked: list[str] = []
    real_verify = context.verify

    def verify(secret, hash_, **kwargs):
        checked.append(hash_)
        return real_verify(secret, hash_, **kwargs)

    monkeypatch.setattr(context, "verify", verify)
    assert auth.sign_in(session, "owner@example.com", "bad-password").error == auth.WRONG_CREDENTIALS
    assert auth.sign_in(session, "nobody@example.com", "bad-password").error == auth.WRONG_CREDENTIALS
    assert len(checked) == 2
    known, unknown = (hash_.rsplit("$", 2)[0] for hash_ in checked)  # $argon2id$v=19$m=…,t=…,p=…
    assert known == unknown and checked[0] != checked[1]


def test_a_failed_sign_in_counts_even_when_the_request_is_rolled_back(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    for _ in range(5):
        assert auth.sign_in(session, "owner@example.com", "bad-password").error == auth.WRONG_CREDENTIALS
        session.rollback()  # the attempt's own write failed
    assert "Too many failed sign-in attempts" in auth.sign_in(session, "owner@example.com", PASSWORD).error


def test_a_forged_client_address_is_validated_and_its_failures_count_on_postgresql(pg_engine):
    with Session(pg_engine, expire_on_commit=False) as session:
        account = make_account(session)
        make_user(session, account, "owner@example.com")
        session.commit()
        forged = "1" * 65  # an X-Forwarded-For longer than the column
        _fail(session, "owner@example.com", ip=forged, times=5)
        assert "Too many failed" in auth.sign_in(session, "owner@example.com", PASSWORD, ip_address=forged).error

        mapped = auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="::ffff:198.51.100.7")
        auth.start_session(session, mapped.handoff_code, binding=mapped.binding, ip_address="::ffff:198.51.100.7")
        other = auth.sign_in(session, "owner@example.com", PASSWORD, ip_address="198.51.100.8")
        auth.start_session(session, other.handoff_code, binding=other.binding, ip_address=forged)
        session.commit()
        stored = session.exec(select(AuthSession.ip_address).order_by(col(AuthSession.id))).all()
    assert stored == ["198.51.100.7", ""]


def test_old_failures_are_pruned(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    _fail(session, "owner@example.com", now=utcnow() - timedelta(days=2))
    _fail(session, "someone@example.com")
    assert session.exec(select(AuthAttempt.email)).all() == ["someone@example.com"]


def test_an_email_over_320_characters_is_refused_and_not_recorded(engine):
    with Session(engine) as session:
        too_long = "a" * 309 + "@example.com"  # 321 characters
        outcome = auth.sign_in(session, too_long, "bad-password")
        session.commit()
        assert outcome.error == "An email address has at most 320 characters."
        assert session.exec(select(AuthAttempt)).all() == []


def test_handoff_code_works_once(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    outcome = auth.sign_in(session, "owner@example.com", PASSWORD)
    assert auth.start_session(session, outcome.handoff_code, binding=outcome.binding) is not None
    assert auth.start_session(session, outcome.handoff_code, binding=outcome.binding) is None


def _exchange_client(engine, monkeypatch) -> TestClient:
    monkeypatch.setattr(auth_routes, "transaction", lambda: transaction(engine))
    return TestClient(create_api())


def test_a_sign_in_code_works_only_in_the_browser_that_signed_in(engine, monkeypatch):
    with Session(engine) as session:
        account = make_account(session)
        make_user(session, account, "owner@example.com")
        outcome = auth.sign_in(session, "owner@example.com", PASSWORD)
        session.commit()
    client = _exchange_client(engine, monkeypatch)
    # The code alone (a leaked link, or one an attacker got for their own account and sent).
    for cookies in ({}, {auth.HANDOFF_COOKIE: "someone-elses"}):
        client.cookies.clear()
        for name, value in cookies.items():
            client.cookies.set(name, value)
        response = client.get("/auth/session", params={"code": outcome.handoff_code}, follow_redirects=False)
        assert response.headers["location"] == "/sign-in?expired=1" and auth.SESSION_COOKIE not in response.cookies
    client.cookies.set(auth.HANDOFF_COOKIE, outcome.binding)
    response = client.get("/auth/session", params={"code": outcome.handoff_code}, follow_redirects=False)
    assert response.headers["location"] == "/" and response.cookies[auth.SESSION_COOKIE]


@pytest.mark.parametrize(
    ("role", "asked", "lands"),
    [
        ("owner", "/billing?x=1", "/billing?x=1"),
        ("owner", "/audit-log", "/audit-log"),
        ("member", "/billing?x=1", "/"),
        ("member", "/audit-log", "/"),
        ("member", "/profile", "/profile"),
        ("admin", "/audit-log", "/"),
        ("admin", "/billing/", "/billing/"),
        ("member", "https://evil.example/", "/"),
    ],
)
def test_sign_in_lands_on_next_only_when_the_role_may_open_it(engine, monkeypatch, role, asked, lands):
    """A `next=` left by another user (an owner's page, say) does not land a member on "No access"."""
    with Session(engine) as session:
        account = make_account(session)
        make_user(session, account, f"{role}@example.com", role)
        outcome = auth.sign_in(session, f"{role}@example.com", PASSWORD)
        session.commit()
    client = _exchange_client(engine, monkeypatch)
    client.cookies.set(auth.HANDOFF_COOKIE, outcome.binding)
    response = client.get("/auth/session", params={"code": outcome.handoff_code, "next": asked}, follow_redirects=False)
    assert response.headers["location"] == lands and response.cookies[auth.SESSION_COOKIE]


def test_sign_out_is_a_post_from_the_consoles_own_pages(engine, monkeypatch):
    with Session(engine) as session:
        account = make_account(session)
        make_user(session, account, "owner@example.com")
        token = signed_in_token(session, "owner@example.com")
        session.commit()
    client = _exchange_client(engine, monkeypatch)
    client.cookies.set(auth.SESSION_COOKIE, token)
    assert client.get("/auth/sign-out", follow_redirects=False).status_code == 405
    for headers in ({}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert client.post("/auth/sign-out", headers=headers, follow_redirects=False).status_code == 403
    with Session(engine) as session:
        assert auth.actor_for_session_token(session, token) is not None
    response = client.post("/auth/sign-out", headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    with Session(engine) as session:
        assert auth.actor_for_session_token(session, token) is None


def test_handoff_code_expires(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    outcome = auth.sign_in(session, "owner@example.com", PASSWORD)
    later = utcnow() + timedelta(minutes=2)
    assert auth.start_session(session, outcome.handoff_code, binding=outcome.binding, now=later) is None


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


def _reset_secret(session, email: str, *, ip: str = "203.0.113.9") -> str:
    auth.request_password_reset(session, email, base_url="http://console", ip_address=ip)
    session.commit()
    body = session.exec(select(OutboxEmail).order_by(col(OutboxEmail.id).desc())).first().body_text
    return body.split("token=", 1)[1].split()[0]


def test_a_new_reset_link_ends_every_earlier_one(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    first = _reset_secret(session, "owner@example.com")
    second = _reset_secret(session, "owner@example.com")
    with pytest.raises(ValidationFailed, match="invalid or has expired"):
        auth.reset_password(session, first, "a-brand-new-passphrase")
    auth.reset_password(session, second, "a-brand-new-passphrase")


def test_reset_requests_are_limited_per_email_and_per_address(session):
    account = make_account(session)
    make_user(session, account, "owner@example.com")
    session.commit()
    for number in range(3):
        _reset_secret(session, "owner@example.com", ip=f"203.0.113.{number}")
    with pytest.raises(ValidationFailed, match="Too many password reset requests"):
        auth.request_password_reset(session, "owner@example.com", base_url="http://console", ip_address="198.51.100.1")
    session.rollback()
    assert len(session.exec(select(OutboxEmail)).all()) == 3

    for number in range(10):  # unknown emails count too: the answer must not tell them apart
        auth.request_password_reset(
            session, f"user{number}@example.com", base_url="http://console", ip_address="198.51.100.2"
        )
        session.commit()
    with pytest.raises(ValidationFailed, match="Too many password reset requests"):
        auth.request_password_reset(session, "other@example.com", base_url="http://console", ip_address="198.51.100.2")
    session.rollback()
    later = utcnow() + timedelta(minutes=61)
    auth.request_password_reset(
        session, "owner@example.com", base_url="http://console", ip_address="198.51.100.2", now=later
    )


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
