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
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlmodel import Session

from app.config import get_settings
from app.errors import Conflict, ValidationFailed
from app.models import utcnow
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
