"""Operator staff: invitation, sign-in and server-side sessions, as customers' (`app.services.auth`)
but in tables of their own (operator_user, operator_session, operator_token) and under a cookie
of their own, so an operator session is never a customer's and a customer's never an operator's."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.errors import Conflict, DomainError, NotAuthenticated, ValidationFailed
from app.models import Account, OperatorSession, OperatorToken, OperatorUser, utcnow
from app.services import throttle
from app.services.accounts import normalize_email
from app.services.credentials import Credentials, SignInOutcome
from app.services.email import queue_email
from app.services.passwords import check_new_password, hash_password
from app.services.permissions import Actor, Permission
from app.services.tokens import sha256_hex

OPERATOR_COOKIE = "ld_operator"
HANDOFF_COOKIE = "ld_operator_handoff"
HANDOFF_PATH = "/operator/auth/session"
INVITE_TTL = timedelta(days=7)
# Operator staff: their tokens, sign-in codes and sessions (`app.services.credentials`); sign-ins
# are counted apart from customers' (another throttle kind, same rules).
STAFF = Credentials(
    holder=OperatorUser,
    token_model=OperatorToken,
    session_model=OperatorSession,
    holder_key="operator_id",
    cookie=OPERATOR_COOKIE,
    handoff_cookie=HANDOFF_COOKIE,
    handoff_path=HANDOFF_PATH,
    sign_in_kind="op_sign_in",
)


# "View as": an operator session of its own, under a cookie of its own, that reads one account's
# console read-only (never an operator's sign-in: operator_for_token refuses it).
VIEW_AS_COOKIE = "ld_view_as"
VIEWERS = replace(STAFF, cookie=VIEW_AS_COOKIE)
VIEW_AS_TTL = timedelta(hours=8)
# What an operator viewing an account holds: every page its Owner opens, to see what they see.
# Nothing can be changed all the same: the console's transaction is read-only (`ViewingReadOnly`).
VIEW_AS_ROLE = "Operator (read-only)"


class ViewingReadOnly(DomainError):
    """What every change refuses while an operator views an account."""

    status_code = 403
    code = "read_only"

    def __init__(self):
        super().__init__("You are viewing this account as an operator: the console is read-only.")


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
    link = f"{base_url}/operator/accept-invite?token={STAFF.issue(session, user, 'invite', INVITE_TTL, now)}"
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
    user = STAFF.holder_of(session, token, "invite", now or utcnow())
    return user.email if user is not None and user.status == "invited" else None


def accept_invitation(
    session: Session, token: str, password: str, *, full_name: str = "", now: datetime | None = None
) -> OperatorUser:
    now = now or utcnow()
    holder = STAFF.holder_of(session, token, "invite", now)
    if holder is None or holder.status != "invited":
        raise ValidationFailed("This invitation link is invalid or has expired. Ask for a new invitation.")
    check_new_password(password, holder.email)
    user = STAFF.consume(session, token, "invite", now)
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
    user = STAFF.check_password(
        session,
        email,
        password,
        lambda known: session.exec(select(OperatorUser).where(OperatorUser.email == known)).first(),
        ip_address=ip_address,
        now=now,
    )
    if isinstance(user, str):
        return SignInOutcome(error=user)
    if user.status != "active":
        return SignInOutcome(error="This operator account is not active.")
    return STAFF.handoff(session, user, now)


def start_session(session: Session, code: str, *, binding: str, now: datetime | None = None) -> str | None:
    """Trade a sign-in code, with the cookie it is bound to, for a session token; None if not valid."""
    started = STAFF.start(session, code, binding=binding, now=now or utcnow())
    return started[0] if started is not None else None


def operator_for_token(session: Session, token: str, *, now: datetime | None = None) -> Operator:
    """The signed-in operator of a cookie token; NotAuthenticated when the session is not valid now."""
    live = STAFF.signed_in(session, token, now or utcnow())
    if live is None:
        raise NotAuthenticated("Your operator session has ended. Please sign in again.")
    op_session, user = live
    if op_session.viewing_account_id is not None:
        raise NotAuthenticated("Your operator session has ended. Please sign in again.")
    assert user.id is not None  # a stored user
    return Operator(operator_id=user.id, email=user.email, full_name=user.full_name, session_id=op_session.id)


def sign_out(session: Session, token: str, *, now: datetime | None = None) -> None:
    """End the operator's session, and any "View as" of theirs with it."""
    now = now or utcnow()
    live = STAFF.signed_in(session, token, now)
    if live is not None:
        session.execute(
            update(OperatorSession)
            .where(
                col(OperatorSession.operator_id) == live[1].id,
                col(OperatorSession.viewing_account_id).is_not(None),
                col(OperatorSession.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )
    STAFF.end(session, token, now)


def view_as_code(session: Session, operator: Operator, account_id: int, *, now: datetime) -> SignInOutcome:
    """A one-minute code, bound to this browser, that the operator's browser trades at
    HANDOFF_PATH for a "View as" session of the account (cookie VIEW_AS_COOKIE)."""
    user = session.get_one(OperatorUser, operator.operator_id)
    return VIEWERS.handoff(session, user, now, "view_as", viewing_account_id=account_id)


def start_viewing(session: Session, code: str, *, binding: str, now: datetime | None = None) -> tuple[str, int] | None:
    """Trade a "View as" code for its session: the token and the account viewed; None when the
    code is not valid, not this browser's, or its operator is no longer active."""
    now = now or utcnow()
    used = VIEWERS.consume_token(session, code, "view_as", now, binding=binding)
    user = session.get(OperatorUser, used.operator_id) if used is not None else None
    if used is None or user is None or user.status != "active" or used.viewing_account_id is None:
        return None
    token = VIEWERS.open(session, user, now, viewing_account_id=used.viewing_account_id)
    # Shorter than a sign-in: a look at an account, not a working day.
    session.execute(
        update(OperatorSession)
        .where(col(OperatorSession.token_hash) == sha256_hex(token))
        .values(expires_at=now + VIEW_AS_TTL)
    )
    return token, used.viewing_account_id


def viewing(
    session: Session, token: str, *, now: datetime | None = None
) -> tuple[OperatorSession, OperatorUser] | None:
    """The live "View as" session of a cookie token and its operator, or None."""
    live = VIEWERS.signed_in(session, token, now or utcnow())
    return live if live is not None and live[0].viewing_account_id is not None else None


def viewer_for_token(session: Session, token: str, *, now: datetime | None = None) -> Actor | None:
    """The reader of the console while an operator views an account: the account's Owner's
    permissions, no membership (user 0) and `viewing` set, so `acting` makes every transaction
    read-only. None when the token is no live "View as" session."""
    live = viewing(session, token, now=now)
    if live is None:
        return None
    view, user = live
    account = session.get(Account, view.viewing_account_id)
    if account is None:
        return None
    assert account.id is not None  # a stored account
    return Actor(
        user_id=0,
        account_id=account.id,
        email=user.email,
        full_name=f"{user.full_name or user.email} (operator)",
        role_key="",
        role_name=VIEW_AS_ROLE,
        permissions=frozenset(Permission),
        session_id=view.id,
        timezone=account.timezone,
        viewing=True,
    )
