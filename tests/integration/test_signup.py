"""Sign-up: the emailed link (24 hours, single use) opens the new account, throttled per address,
never telling whether an email is registered, and off with SIGNUP_ENABLED=false."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlmodel import select

from app.config import get_settings
from app.errors import Conflict, ValidationFailed
from app.models import Account, Job, OutboxEmail, Person, User, utcnow
from app.services import audit, auth, signup, team
from app.services.accounts import builtin_role
from tests.factories import PASSWORD, make_account, make_user, signed_in_actor

BASE = "http://console"
NEW_PASSWORD = "tall-ships-sail-2026"


def _form(email: str = "founder@startup.example", **changes) -> signup.SignUp:
    values = {
        "company": "Startup Ltd",
        "full_name": "Fay Founder",
        "email": email,
        "password": NEW_PASSWORD,
        "timezone": "America/New_York",
    }
    return signup.SignUp(**{**values, **changes})


def _sign_up(session, form: signup.SignUp | None = None, ip: str = "203.0.113.7", **kwargs) -> str:
    sent_to = signup.sign_up(session, form or _form(), base_url=BASE, ip_address=ip, **kwargs)
    session.commit()
    return sent_to


def _emails(session, to: str) -> list[OutboxEmail]:
    return list(session.exec(select(OutboxEmail).where(OutboxEmail.to_address == to).order_by(OutboxEmail.id)))


def _link_token(session, to: str) -> str:
    body = _emails(session, to)[-1].body_text
    return next(line for line in body.splitlines() if "/verify-email?token=" in line).split("token=")[1]


def _verify(session, token: str, **kwargs) -> str:
    """The session token the browser gets from the link."""
    outcome = auth.verify_sign_up(session, token, **kwargs)
    assert outcome.error == "", outcome.error
    token = auth.start_session(session, outcome.handoff_code, binding=outcome.binding)
    session.commit()
    return token


def test_the_link_opens_a_basic_account_in_the_browsers_timezone_with_the_person_as_owner(session):
    assert _sign_up(session) == "founder@startup.example"
    # Nothing signs in before the email is confirmed.
    assert auth.sign_in(session, "founder@startup.example", NEW_PASSWORD).error == auth.WRONG_CREDENTIALS
    session.commit()

    actor = auth.actor_for_session_token(session, _verify(session, _link_token(session, "founder@startup.example")))

    account = session.get(Account, actor.account_id)
    assert (account.name, account.plan_code, account.timezone) == ("Startup Ltd", "basic", "America/New_York")
    assert (actor.role_key, actor.full_name, actor.email) == ("owner", "Fay Founder", "founder@startup.example")
    assert auth.sign_in(session, "founder@startup.example", NEW_PASSWORD).error == ""


def test_the_link_works_once_and_for_24_hours(session):
    _sign_up(session)
    token = _link_token(session, "founder@startup.example")
    late = utcnow() + timedelta(hours=24, seconds=1)
    assert auth.verify_sign_up(session, token, now=late).error == auth.VERIFICATION_INVALID
    session.commit()

    _verify(session, token, now=utcnow() + timedelta(hours=23, minutes=59))
    assert auth.verify_sign_up(session, token).error == auth.VERIFICATION_INVALID
    assert auth.verify_sign_up(session, "made-up").error == auth.VERIFICATION_INVALID


def test_a_registered_email_gets_the_same_answer_and_an_email_instead_of_an_account(session):
    account = make_account(session, "Acme")
    make_user(session, account, "ann@acme.example", "owner")
    session.commit()
    accounts_before = len(session.exec(select(Account)).all())

    new = _sign_up(session, _form("new@startup.example"))
    known = _sign_up(session, _form("Ann@Acme.example", password="another-passphrase-9"))

    assert (new, known) == ("new@startup.example", "ann@acme.example")
    assert len(session.exec(select(Account)).all()) == accounts_before + 1  # only the new email's
    [message] = _emails(session, "ann@acme.example")
    assert message.subject == "You already have a Ledgerdesk account"
    assert f"{BASE}/sign-in" in message.body_text and f"{BASE}/forgot-password" in message.body_text
    # Her password is hers still.
    assert auth.sign_in(session, "ann@acme.example", PASSWORD).error == ""
    assert auth.sign_in(session, "ann@acme.example", "another-passphrase-9").error == auth.WRONG_CREDENTIALS


def _acme_inviting_ivy(session) -> Account:
    """Acme, whose owner has invited ivy@acme.example (a person with no password yet)."""
    acme = make_account(session, "Acme")
    make_user(session, acme, "owner@acme.example", "owner")
    session.commit()
    team.invite(
        session,
        signed_in_actor(session, "owner@acme.example"),
        email="ivy@acme.example",
        full_name="Ivy",
        role_id=builtin_role(session, "member").id,
        base_url=BASE,
    )
    session.commit()
    return acme


def test_a_stranger_signing_up_with_someones_email_sets_no_password_for_it(session):
    """An invited person (no password yet) whose email a stranger signs up with: the stranger's
    password is given only to whoever opens the link, and until then the invitation still works."""
    _acme_inviting_ivy(session)
    _sign_up(session, _form("ivy@acme.example", password="strangers-password-1"))

    person = session.exec(select(Person).where(Person.email == "ivy@acme.example")).one()
    assert person.password_hash == ""
    assert auth.sign_in(session, "ivy@acme.example", "strangers-password-1").error == auth.WRONG_CREDENTIALS
    message = next(m for m in _emails(session, "ivy@acme.example") if "/accept-invite?token=" in m.body_text)
    invite_token = next(line for line in message.body_text.splitlines() if "/accept-invite?token=" in line).split(
        "token="
    )[1]
    assert not auth.invitation(session, invite_token).existing


def test_sign_ups_are_throttled_per_address_and_per_email(session):
    for number in range(signup.MAX_PER_ADDRESS):
        _sign_up(session, _form(f"person{number}@startup.example"))
    with pytest.raises(ValidationFailed, match="Too many sign-ups"):
        _sign_up(session, _form("one.more@startup.example"))
    session.rollback()
    _sign_up(session, _form("one.more@startup.example"), ip="198.51.100.9")

    for number in range(signup.MAX_PER_EMAIL - 1):
        _sign_up(session, _form("one.more@startup.example"), ip=f"192.0.2.{number + 1}")
    with pytest.raises(ValidationFailed, match="Too many sign-ups"):
        _sign_up(session, _form("one.more@startup.example"), ip="192.0.2.200")
    session.rollback()
    # A refused sign-up created nothing: one account and one link per accepted one.
    assert len(session.exec(select(User).where(User.email == "one.more@startup.example")).all()) == signup.MAX_PER_EMAIL
    assert len(_emails(session, "one.more@startup.example")) == signup.MAX_PER_EMAIL


def test_the_form_is_checked_before_anything_is_created(session):
    with pytest.raises(ValidationFailed) as refused:
        _sign_up(session, _form(company="  "))
    assert refused.value.field == "company"
    session.rollback()
    with pytest.raises(ValidationFailed) as refused:
        _sign_up(session, _form(password="short"))
    assert refused.value.field == "password"
    session.rollback()
    with pytest.raises(ValidationFailed) as refused:
        _sign_up(session, _form("not-an-email"))
    assert refused.value.field == "email"
    session.rollback()
    assert session.exec(select(Account)).all() == []
    # An unknown timezone starts the account on UTC.
    _sign_up(session, _form(timezone="Mars/Olympus"))
    assert session.exec(select(Account)).one().timezone == "UTC"


def test_sign_up_is_refused_when_turned_off(session, monkeypatch):
    monkeypatch.setenv("SIGNUP_ENABLED", "false")
    get_settings.cache_clear()
    try:
        with pytest.raises(Conflict, match="Sign-up is closed"):
            _sign_up(session)
    finally:
        monkeypatch.delenv("SIGNUP_ENABLED")
        get_settings.cache_clear()
    session.rollback()
    assert session.exec(select(Account)).all() == []
    assert _emails(session, "founder@startup.example") == []


def test_sign_ups_whose_link_expired_unused_are_pruned_and_the_email_can_sign_up_again(session):
    # Three sign-ups: one expires unused, one is verified, one still has a live link; and Ivy,
    # invited into Acme, signs up too and lets her link expire (her person and invitation stay).
    acme = _acme_inviting_ivy(session)
    _sign_up(session, _form("lapsed@startup.example", company="Lapsed Ltd"))
    _sign_up(session, _form("ivy@acme.example", company="Ivy Co"), ip="203.0.113.8")
    _sign_up(session, _form("kept@startup.example", company="Kept Ltd"), ip="203.0.113.9")
    _verify(session, _link_token(session, "kept@startup.example"))
    later = utcnow() + timedelta(hours=24, seconds=1)
    _sign_up(session, _form("fresh@startup.example", company="Fresh Ltd"), ip="203.0.113.10", now=later)
    before = {name: len(session.exec(select(model)).all()) for name, model in (("users", User), ("people", Person))}

    assert signup.prune_expired(session, now=later) == 2
    session.commit()
    # The next run is due within the hour.
    [job] = session.exec(select(Job).where(Job.kind == "prune_sign_ups")).all()
    assert later < job.run_at.replace(tzinfo=job.run_at.tzinfo or UTC) <= later + signup.PRUNE_EVERY

    names = set(session.exec(select(Account.name)).all())
    assert names == {"Acme", "Kept Ltd", "Fresh Ltd"}
    assert session.exec(select(Person).where(Person.email == "lapsed@startup.example")).first() is None
    assert not _emails(session, "lapsed@startup.example")
    ivy = session.exec(select(User).where(User.email == "ivy@acme.example")).all()
    assert [(u.account_id, u.status) for u in ivy] == [(acme.id, "invited")]
    assert len(session.exec(select(User)).all()) == before["users"] - 2
    assert len(session.exec(select(Person)).all()) == before["people"] - 1
    # Idempotent; and the email signs up again and its new link opens a new account.
    assert signup.prune_expired(session, now=later) == 0
    session.commit()
    _sign_up(session, _form("lapsed@startup.example", company="Lapsed Again"), ip="203.0.113.11")
    actor = auth.actor_for_session_token(session, _verify(session, _link_token(session, "lapsed@startup.example")))
    assert session.get(Account, actor.account_id).name == "Lapsed Again"


def test_an_unverified_account_with_anything_else_in_it_is_not_pruned(session):
    _sign_up(session)
    user = session.exec(select(User).where(User.email == "founder@startup.example")).one()
    audit.record_without_user(session, user.account_id, "Operator", "test.note", "An operator looked at it")
    session.commit()
    assert signup.prune_expired(session, now=utcnow() + timedelta(days=2)) == 0
    session.commit()
    assert session.get(User, user.id) is not None
