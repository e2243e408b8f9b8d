"""Sign-up: a new company creates its account at /sign-up and its person becomes the Owner once
the emailed link (24 hours, single use) is opened.

The answer never tells whether an email is registered: every sign-up that passes the form's
checks gets the same "check your email" and costs the same password hash. An email that already
has a password gets an email saying so (sign in, or reset the password), and nothing is created:
a stranger cannot attach an account to someone else's email, and the owner of the email is told.
An email without a password (only invited, or an earlier sign-up not verified) gets an account
that waits for verification; the password chosen waits in the link (`UserToken.password_hash`)
and is given to the person only when the link is used, by whoever reads that inbox.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, exists, update
from sqlmodel import Session, SQLModel, col, select

from app.config import get_settings
from app.errors import Conflict, ValidationFailed
from app.jobs.queue import enqueue
from app.models import Account, OutboxEmail, Person, User, UserToken, utcnow
from app.services import auth, throttle
from app.services.accounts import builtin_role, create_account, create_user, normalize_email, person_by_email
from app.services.email import queue_email
from app.services.passwords import check_new_password, hash_password

WINDOW = timedelta(hours=1)
# Sign-ups within WINDOW: per client address (an IPv6 client's /64), and per email so nobody's
# inbox can be filled with links.
MAX_PER_ADDRESS = 5
MAX_PER_EMAIL = 3
CLOSED = "Sign-up is closed. Ask the company running this console for an account."
# How often the expired sign-ups are deleted, and how many at most each time.
PRUNE_EVERY = timedelta(hours=1)
PRUNE_LIMIT = 500
# What a sign-up makes: its account, the person's membership, the link and the emails. An
# account with a row anywhere else is not a bare sign-up and is never pruned.
_SIGN_UP_TABLES = {"account", "user", "user_token", "outbox_email"}


@dataclass(frozen=True)
class SignUp:
    company: str
    full_name: str
    email: str
    password: str
    # The browser's IANA timezone; the account's timezone (UTC when unknown).
    timezone: str = "UTC"


def _text(value: str, field: str, what: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValidationFailed(f"Enter {what}.", field=field)
    if len(value) > 200:
        raise ValidationFailed("Use at most 200 characters.", field=field)
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValidationFailed("Enter your email address.", field="email")
    if len(value) > throttle.MAX_EMAIL_LENGTH:
        raise ValidationFailed(f"An email address has at most {throttle.MAX_EMAIL_LENGTH} characters.", field="email")
    try:
        return normalize_email(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ValidationFailed("Enter a valid email address, like name@example.com.", field="email") from None


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return value


def sign_up(session: Session, form: SignUp, *, base_url: str, ip_address: str = "", now: datetime | None = None) -> str:
    """Check the form, throttle, and email the link (or, to a registered email, say it has an
    account); the normalized email, for "we sent a link to …"."""
    if not get_settings().signup_enabled:
        raise Conflict(CLOSED)
    now = now or utcnow()
    company = _text(form.company, "company", "your company's name")
    full_name = _text(form.full_name, "full_name", "your full name")
    email = _email(form.email)
    check_new_password(form.password, email)
    since = now - WINDOW
    if (
        throttle.count(session, throttle.SIGN_UP, since=since, ip=ip_address) >= MAX_PER_ADDRESS
        or throttle.count(session, throttle.SIGN_UP, since=since, email=email) >= MAX_PER_EMAIL
    ):
        raise ValidationFailed("Too many sign-ups. Try again in an hour.")
    throttle.record(session, throttle.SIGN_UP, email=email, ip=ip_address, now=now)
    # Hashed whether or not it is kept, so both answers take as long.
    password_hash = hash_password(form.password)
    person = person_by_email(session, email)
    if person is not None and person.password_hash:
        queue_email(
            session,
            to=email,
            subject="You already have a Ledgerdesk account",
            body=(
                f"Hello {person.full_name or email},\n\n"
                f"Someone, probably you, tried to sign up {company} with this email, but you already have "
                f"an account. Sign in here:\n{base_url}/sign-in\n\n"
                f"Forgot your password? Choose a new one here:\n{base_url}/forgot-password\n\n"
                "Nothing was created. If this was not you, ignore this email."
            ),
        )
        return email
    account = create_account(session, name=company, timezone=_timezone(form.timezone))
    user = create_user(
        session,
        account=account,
        email=email,
        full_name=full_name,
        role=builtin_role(session, "owner"),
        password=None,
        status="unverified",
    )
    secret = auth.issue_verification(session, user, password_hash, now=now)
    queue_email(
        session,
        to=email,
        subject="Confirm your email to open your Ledgerdesk account",
        body=(
            f"Hello {full_name},\n\n"
            f"Open this link within 24 hours to confirm your email and open the account of {company}:\n"
            f"{base_url}/verify-email?token={secret}\n\n"
            "If you did not sign up, ignore this email: nothing happens without the link."
        ),
        account_id=account.id,
    )
    return email


def _bare(session: Session, account_id: int) -> bool:
    """Nothing but a sign-up's rows belong to the account (no other user, nothing of any other table)."""
    if len(session.exec(select(User.id).where(User.account_id == account_id).limit(2)).all()) != 1:
        return False
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _SIGN_UP_TABLES:
            continue
        # Every column that points at an account (account_id, an operator's viewing_account_id, …).
        for fk in table.foreign_keys:
            if (
                fk.column.table.name == "account"
                and session.execute(select(exists().where(fk.parent == account_id))).scalar()
            ):
                return False
    return True


def expired_sign_ups(session: Session, now: datetime) -> list[User]:
    """Unverified sign-ups whose every verification link expired unused (oldest first)."""
    live_link = exists().where(
        col(UserToken.user_id) == User.id,
        col(UserToken.purpose) == "verify",
        col(UserToken.expires_at) > now,
    )
    return list(
        session.exec(
            select(User).where(User.status == "unverified", ~live_link).order_by(col(User.id)).limit(PRUNE_LIMIT)
        )
    )


def prune_expired(session: Session, now: datetime | None = None) -> int:
    """Job "prune_sign_ups": delete each sign-up whose verification link expired unused (the
    account, its one unverified membership, the person when they belong nowhere else and have no
    password, the link and the emails of that account), so the email can sign up again; nothing
    else. Idempotent. Returns how many were deleted; schedules the next run."""
    now = now or utcnow()
    pruned = 0
    for user in expired_sign_ups(session, now):
        if not _bare(session, user.account_id):
            continue
        person = session.get_one(Person, user.person_id)
        session.execute(delete(UserToken).where(col(UserToken.user_id) == user.id))
        session.execute(delete(OutboxEmail).where(col(OutboxEmail.account_id) == user.account_id))
        session.execute(delete(User).where(col(User.id) == user.id))
        session.execute(delete(Account).where(col(Account.id) == user.account_id))
        others = session.exec(select(User.id).where(User.person_id == person.id)).first()
        if others is None and not person.password_hash:
            session.execute(delete(Person).where(col(Person.id) == person.id))
        elif person.last_user_id == user.id:
            session.execute(update(Person).where(col(Person.id) == person.id).values(last_user_id=None))
        pruned += 1
    schedule_pruning(session, now)
    return pruned


def schedule_pruning(session: Session, now: datetime | None = None) -> None:
    """Make sure the next pruning is due; each run schedules the one after it."""
    step = int(PRUNE_EVERY.total_seconds())
    run_at = datetime.fromtimestamp((int((now or utcnow()).timestamp()) // step + 1) * step, tz=UTC)
    enqueue(session, "prune_sign_ups", {}, dedupe_key=f"prune_sign_ups:{run_at.isoformat()}", run_at=run_at)
