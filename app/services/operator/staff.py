"""Operator staff: invitation, sign-in and server-side sessions, as customers' (`app.services.auth`)
but in tables of their own (operator_user, operator_session, operator_token) and under a cookie
of their own, so an operator session is never a customer's and a customer's never an operator's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import Conflict, NotAuthenticated, ValidationFailed
from app.models import OperatorSession, OperatorToken, OperatorUser, utcnow
from app.services import throttle
from app.services.accounts import normalize_email
from app.services.auth import WRONG_CREDENTIALS, SignInOutcome
from app.services.email import queue_email
from app.services.passwords import check_new_password, hash_password, verify_password
from app.services.tokens import new_secret, sha256_hex

OPERATOR_COOKIE = "ld_operator"
HANDOFF_COOKIE = "ld_operator_handoff"
HANDOFF_PATH = "/operator/auth/session"
HANDOFF_TTL = timedelta(seconds=60)
INVITE_TTL = timedelta(days=7)
LAST_SEEN_GRANULARITY = timedelta(minutes=1)
# Operator sign-ins are counted apart from customers' (another throttle kind, same rules).
SIGN_IN_KIND = "op_sign_in"


@dataclass(frozen=True)
class Operator:
    """A signed-in member of the operator's staff, loaded afresh on every event."""

    operator_id: int
    email: str
    full_name: str
    session_id: int | None = None

    @property
    def name(self) -> str:
        return self.full_name or self.email


@dataclass(frozen=True)
class Author:
    """Who an operator action is recorded as in the account's audit log: a member of staff, or an
    operator API key."""

    name: str
    email: str
    operator_id: int | None = None


def author_of(operator: Operator) -> Author:
    return Author(name=f"{operator.name} (operator)", email=operator.email, operator_id=operator.operator_id)


def create_operator(session: Session, email: str, *, full_name: str = "", base_url: str) -> tuple[OperatorUser, str]:
    """A new, invited member of staff and the link (valid 7 days) to choose their password."""
    email = normalize_email(email)
    if "@" not in email or len(email) > throttle.MAX_EMAIL_LENGTH:
        raise ValidationFailed("Enter a valid email address.", field="email")
    if session.exec(select(OperatorUser).where(OperatorUser.email == email)).first() is not None:
        raise Conflict("An operator with this email already exists.", field="email")
    user = OperatorUser(email=email, full_name=full_name.strip(), status="invited")
    session.add(user)
    session.flush()
    return user, invite(session, user, base_url=base_url)


def invite(session: Session, user: OperatorUser, *, base_url: str, now: datetime | None = None) -> str:
    now = now or utcnow()
    link = f"{base_url}/operator/accept-invite?token={_issue(session, user, 'invite', INVITE_TTL, now)}"
    queue_email(
        session,
        to=user.email,
        subject="You are invited to the Ledgerdesk operator back office",
        body=f"Hello {user.full_name or user.email},\n\nChoose your password here (valid for 7 days):\n{link}\n",
    )
    return link


def set_password(session: Session, user: OperatorUser, password: str) -> None:
    """A password set directly (the demo seed); the user becomes active."""
    check_new_password(password, user.email)
    user.password_hash, user.status = hash_password(password), "active"
    session.add(user)
    session.flush()


def invited_email(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """The email an invitation link greets, without using it up; None when it is not valid."""
    user = _token_user(session, token, "invite", now or utcnow())
    return user.email if user is not None and user.status == "invited" else None


def accept_invitation(
    session: Session, token: str, password: str, *, full_name: str = "", now: datetime | None = None
) -> OperatorUser:
    now = now or utcnow()
    holder = _token_user(session, token, "invite", now)
    if holder is None or holder.status != "invited":
        raise ValidationFailed("This invitation link is invalid or has expired. Ask for a new invitation.")
    check_new_password(password, holder.email)
    user = _consume(session, token, "invite", now)
    if user is None:
        raise ValidationFailed("This invitation link has already been used.")
    user.password_hash, user.status = hash_password(password), "active"
    if full_name.strip():
        user.full_name = full_name.strip()
    session.add(user)
    session.flush()
    return user


def sign_in(
    session: Session, email: str, password: str, *, ip_address: str = "", now: datetime | None = None
) -> SignInOutcome:
    """As customers' sign-in: check the password (throttled per email and address, an unknown
    email costing the same hash check) and hand out a one-minute code bound to a browser secret,
    traded at HANDOFF_PATH for the operator cookie."""
    now = now or utcnow()
    email = normalize_email(email)
    if not email or not password:
        return SignInOutcome(error="Enter your email and password.")
    if len(email) > throttle.MAX_EMAIL_LENGTH:
        return SignInOutcome(error=WRONG_CREDENTIALS)
    settings = get_settings()
    since = now - timedelta(minutes=settings.sign_in_lockout_minutes)
    if (
        throttle.count(session, SIGN_IN_KIND, since=since, email=email, ip=ip_address) >= settings.sign_in_max_failures
        or throttle.count(session, SIGN_IN_KIND, since=since, ip=ip_address) >= settings.sign_in_max_failures_per_ip
    ):
        return SignInOutcome(
            error=f"Too many failed sign-in attempts. Try again in {settings.sign_in_lockout_minutes} minutes."
        )
    user = session.exec(select(OperatorUser).where(OperatorUser.email == email)).first()
    if not verify_password(password, user.password_hash if user is not None else ""):
        throttle.record(session, SIGN_IN_KIND, email=email, ip=ip_address, now=now)
        return SignInOutcome(error=WRONG_CREDENTIALS)
    assert user is not None  # an empty hash never verifies
    if user.status != "active":
        return SignInOutcome(error="This operator account is not active.")
    throttle.clear(session, SIGN_IN_KIND, email=email, ip=ip_address)
    binding = new_secret()
    return SignInOutcome(
        handoff_code=_issue(session, user, "handoff", HANDOFF_TTL, now, binding=binding), binding=binding
    )


def start_session(session: Session, code: str, *, binding: str, now: datetime | None = None) -> str | None:
    """Trade a sign-in code, with the cookie it is bound to, for a session token; None if not valid."""
    now = now or utcnow()
    user = _consume(session, code, "handoff", now, binding=binding)
    if user is None or user.status != "active":
        return None
    assert user.id is not None  # a stored user
    token = new_secret()
    session.add(
        OperatorSession(
            token_hash=sha256_hex(token),
            operator_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=get_settings().session_ttl_hours),
        )
    )
    session.flush()
    return token


def operator_for_token(session: Session, token: str, *, now: datetime | None = None) -> Operator:
    """The signed-in operator of a cookie token; NotAuthenticated when the session is not valid now."""
    now = now or utcnow()
    row = (
        session.exec(
            select(OperatorSession, OperatorUser)
            .join(OperatorUser, col(OperatorUser.id) == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == sha256_hex(token))
        ).first()
        if token
        else None
    )
    if row is None:
        raise NotAuthenticated("Your operator session has ended. Please sign in again.")
    op_session, user = row
    if op_session.revoked_at is not None or op_session.expires_at <= now or user.status != "active":
        raise NotAuthenticated("Your operator session has ended. Please sign in again.")
    if now - op_session.last_seen_at > LAST_SEEN_GRANULARITY:
        op_session.last_seen_at = now
        session.add(op_session)
    assert user.id is not None  # a stored user
    return Operator(operator_id=user.id, email=user.email, full_name=user.full_name, session_id=op_session.id)


def sign_out(session: Session, token: str, *, now: datetime | None = None) -> None:
    if token:
        session.execute(
            update(OperatorSession)
            .where(col(OperatorSession.token_hash) == sha256_hex(token), col(OperatorSession.revoked_at).is_(None))
            .values(revoked_at=now or utcnow())
        )


def _issue(
    session: Session, user: OperatorUser, purpose: str, ttl: timedelta, now: datetime, *, binding: str = ""
) -> str:
    assert user.id is not None  # a stored user
    secret = new_secret()
    session.add(
        OperatorToken(
            operator_id=user.id,
            purpose=purpose,
            token_hash=sha256_hex(secret),
            binding_hash=sha256_hex(binding) if binding else "",
            created_at=now,
            expires_at=now + ttl,
        )
    )
    session.flush()
    return secret


def _usable(secret: str, purpose: str, now: datetime) -> tuple:
    return (
        col(OperatorToken.token_hash) == sha256_hex(secret),
        col(OperatorToken.purpose) == purpose,
        col(OperatorToken.used_at).is_(None),
        col(OperatorToken.expires_at) > now,
    )


def _token_user(session: Session, secret: str, purpose: str, now: datetime) -> OperatorUser | None:
    if not secret:
        return None
    row = session.exec(select(OperatorToken).where(*_usable(secret, purpose, now))).first()
    return session.get(OperatorUser, row.operator_id) if row is not None else None


def _consume(
    session: Session, secret: str, purpose: str, now: datetime, *, binding: str | None = None
) -> OperatorUser | None:
    if not secret or binding == "":
        return None
    query = update(OperatorToken).where(*_usable(secret, purpose, now))
    if binding is not None:
        query = query.where(col(OperatorToken.binding_hash) == sha256_hex(binding))
    result = session.execute(query.values(used_at=now).returning(col(OperatorToken.operator_id))).first()
    return session.get(OperatorUser, result[0]) if result is not None else None
