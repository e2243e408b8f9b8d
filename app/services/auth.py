"""Sign-in, server-side sessions, password reset, invitation acceptance and switching accounts.

The browser holds a random session token in an HttpOnly cookie; the database holds only its
SHA-256. Every event handler and endpoint turns the cookie into an Actor through
`actor_for_session_token`, so a revoked session, a blocked user or a changed role takes effect
on the very next action.

A person (email, password) signs in once and is then one of their memberships (a `User`); the
session belongs to that membership, and switching accounts moves it to another of theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, or_, update
from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import NotFound, ValidationFailed
from app.models import Account, AuthSession, Person, Role, User, UserToken, utcnow
from app.services import throttle
from app.services.accounts import normalize_email, person_by_email, person_of
from app.services.credentials import WRONG_CREDENTIALS as WRONG_CREDENTIALS
from app.services.credentials import Credentials, SignInOutcome
from app.services.email import queue_email
from app.services.passwords import check_new_password, hash_password, verify_password
from app.services.permissions import Actor, Permission, parse_permissions, require
from app.services.tokens import new_secret

log = logging.getLogger("ledgerdesk.auth")

SESSION_COOKIE = "ld_session"
# Holds the secret a sign-in code is bound to, in the browser that signed in.
HANDOFF_COOKIE = "ld_handoff"
# Customers' users: their tokens, sign-in codes and sessions (`app.services.credentials`).
CUSTOMERS = Credentials(
    holder=User,
    token_model=UserToken,
    session_model=AuthSession,
    holder_key="user_id",
    cookie=SESSION_COOKIE,
    handoff_cookie=HANDOFF_COOKIE,
    handoff_path="/auth/session",
    sign_in_kind=throttle.SIGN_IN,
)
RESET_TTL = timedelta(hours=1)
# Password-reset requests per email and per client address within RESET_WINDOW.
RESET_WINDOW = timedelta(hours=1)
RESET_MAX_PER_EMAIL = 3
RESET_MAX_PER_ADDRESS = 10
INVITE_TTL = timedelta(days=7)
VERIFY_TTL = timedelta(hours=24)


def safe_next(path: str) -> str:
    """Only same-site relative paths may be redirect targets after sign-in."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"


def _load_actor(session: Session, user: User, session_id: int | None = None) -> Actor:
    assert user.id is not None  # a stored user
    role = session.get(Role, user.role_id)
    account = session.get(Account, user.account_id)
    return Actor(
        user_id=user.id,
        account_id=user.account_id,
        email=user.email,
        full_name=user.full_name,
        role_key=role.key if role else "",
        role_name=role.name if role else "",
        permissions=parse_permissions(role.permissions) if role else frozenset(),
        session_id=session_id,
        timezone=account.timezone if account else "UTC",
    )


def _check_password(session: Session, email: str, password: str, ip_address: str, now: datetime) -> Person | str:
    """The person these credentials belong to, or the message to show. Records failures."""
    return CUSTOMERS.check_password(
        session, email, password, lambda known: person_by_email(session, known), ip_address=ip_address, now=now
    )


def landing_membership(session: Session, person: Person) -> User | str:
    """Where the person's sign-in lands: the active membership used last, else their oldest
    active one; or the message to show when they have none."""
    users = session.exec(select(User).where(User.person_id == person.id).order_by(col(User.created_at), col(User.id)))
    statuses: dict[str, list[User]] = {}
    for user in users:
        statuses.setdefault(user.status, []).append(user)
    active = statuses.get("active", [])
    if active:
        return next((user for user in active if user.id == person.last_user_id), active[0])
    if "blocked" in statuses:
        return "This user is blocked. Ask an owner of your account."
    if "unverified" in statuses:
        return "Confirm your email first: open the link we sent you when you signed up."
    return "Accept your invitation first: use the link in the invitation email."


def _check_credentials(session: Session, email: str, password: str, ip_address: str, now: datetime) -> User | str:
    """The membership these credentials sign into, or the message to show. Records failures."""
    person = _check_password(session, email, password, ip_address, now)
    return person if isinstance(person, str) else landing_membership(session, person)


def sign_in(
    session: Session, email: str, password: str, *, ip_address: str = "", now: datetime | None = None
) -> SignInOutcome:
    """Check the credentials and hand out a one-minute code that the browser trades for the
    HttpOnly session cookie at /auth/session (Reflex's websocket cannot set one). The code is
    bound to a second secret that the signing-in page keeps in a cookie: a code that leaks, or
    that an attacker got for their own account and sends in a link, is useless elsewhere."""
    now = now or utcnow()
    checked = _check_credentials(session, email, password, ip_address, now)
    if isinstance(checked, str):
        return SignInOutcome(error=checked)
    return CUSTOMERS.handoff(session, checked, now)


def start_session(
    session: Session,
    handoff_code: str,
    *,
    binding: str,
    user_agent: str = "",
    ip_address: str = "",
    previous: str = "",
    now: datetime | None = None,
) -> str | None:
    """Trade a handoff code, with the cookie it is bound to, for a session token; None when the
    code is not valid or the binding is not its own. The browser's `previous` session token, a
    live session of the same person (the account switched from), makes the new session one of
    the same browser: that session goes on for the browser's other tabs, and signing out ends
    both."""
    now = now or utcnow()
    user = CUSTOMERS.consume(session, handoff_code, "handoff", now, binding=binding)
    if user is None or user.status != "active":
        return None
    before = CUSTOMERS.signed_in(session, previous, now)
    same_person = before is not None and before[1].person_id == user.person_id
    token = CUSTOMERS.open(
        session,
        user,
        now,
        user_agent=user_agent[:300],
        ip_address=throttle.client_ip(ip_address),
        browser=before[0].browser if same_person and before is not None and before[0].browser else new_secret(16),
    )
    person = person_of(session, user)
    person.last_user_id = user.id
    session.add(person)
    return token


def actor_for_session_token(session: Session, token: str, *, now: datetime | None = None) -> Actor | None:
    """The signed-in actor for a cookie token, or None when the session is not valid now."""
    live = CUSTOMERS.signed_in(session, token, now or utcnow())
    return _load_actor(session, live[1], live[0].id) if live is not None else None


def sign_out(session: Session, token: str, *, now: datetime | None = None) -> None:
    """End the session of the cookie and the browser's others (its tabs' earlier accounts)."""
    now = now or utcnow()
    live = CUSTOMERS.signed_in(session, token, now)
    if live is not None and live[0].browser:
        session.execute(
            update(AuthSession)
            .where(col(AuthSession.browser) == live[0].browser, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=now)
        )
    CUSTOMERS.end(session, token, now)


def memberships_of_person(user_id: int) -> Select:
    """The ids of every membership of the person that user `user_id` is."""
    person_id = select(User.person_id).where(User.id == user_id).scalar_subquery()
    return select(User.id).where(User.person_id == person_id)


def revoke_sessions(
    session: Session,
    user_id: int,
    *,
    keep_session_id: int | None = None,
    now: datetime | None = None,
    every_membership: bool = False,
) -> int:
    """End the user's live sessions (all but `keep_session_id`), with `every_membership` those of
    the person in every account (a new password); the number ended."""
    now = now or utcnow()
    whose = (
        col(AuthSession.user_id).in_(memberships_of_person(user_id))
        if every_membership
        else col(AuthSession.user_id) == user_id
    )
    query = update(AuthSession).where(whose, col(AuthSession.revoked_at).is_(None), col(AuthSession.expires_at) > now)
    if keep_session_id is not None:
        # The kept session's browser keeps its other tabs' sessions too.
        kept = select(AuthSession.browser).where(col(AuthSession.id) == keep_session_id).scalar_subquery()
        query = query.where(
            col(AuthSession.id) != keep_session_id,
            or_(col(AuthSession.browser) == "", col(AuthSession.browser) != kept),
        )
    return cast("CursorResult[Any]", session.execute(query.values(revoked_at=now))).rowcount


def request_password_reset(
    session: Session, email: str, *, base_url: str, ip_address: str = "", now: datetime | None = None
) -> None:
    """Email a reset link when the user exists; say nothing either way (no account enumeration).
    Requests are limited per email and per client address, known emails or not; a new link ends
    every earlier one."""
    now = now or utcnow()
    email = normalize_email(email)
    if len(email) > throttle.MAX_EMAIL_LENGTH:
        raise ValidationFailed(f"An email address has at most {throttle.MAX_EMAIL_LENGTH} characters.", field="email")
    since = now - RESET_WINDOW
    if (
        throttle.count(session, throttle.RESET, since=since, email=email) >= RESET_MAX_PER_EMAIL
        or throttle.count(session, throttle.RESET, since=since, ip=ip_address) >= RESET_MAX_PER_ADDRESS
    ):
        raise ValidationFailed("Too many password reset requests. Try again in an hour.")
    throttle.record(session, throttle.RESET, email=email, ip=ip_address, now=now)
    person = person_by_email(session, email)
    user = landing_membership(session, person) if person is not None else None
    if not isinstance(user, User) or person is None:
        return
    assert user.id is not None  # a stored user
    end_reset_links(session, user.id, now=now)
    secret = CUSTOMERS.issue(session, user, "reset", RESET_TTL, now)
    queue_email(
        session,
        to=user.email,
        subject="Reset your Ledgerdesk password",
        body=(
            f"Hello {person.full_name or person.email},\n\n"
            f"Use this link within one hour to choose a new password:\n"
            f"{base_url}/reset-password?token={secret}\n\n"
            "If you did not ask for this, ignore this email."
        ),
        account_id=user.account_id,
    )


def end_reset_links(session: Session, user_id: int, *, now: datetime) -> None:
    """Every reset link of the person not used yet stops working (a newer one, or a new password)."""
    session.execute(
        update(UserToken)
        .where(
            col(UserToken.user_id).in_(memberships_of_person(user_id)),
            col(UserToken.purpose) == "reset",
            col(UserToken.used_at).is_(None),
            col(UserToken.expires_at) > now,
        )
        .values(expires_at=now)
    )


def check_current_password(session: Session, user: User, password: str, *, ip_address: str, now: datetime) -> None:
    """A signed-in user's current password, throttled like sign-in: after SIGN_IN_MAX_FAILURES
    wrong ones in the lockout window it is refused, right or not, until the window passes."""
    settings = get_settings()
    since = now - timedelta(minutes=settings.sign_in_lockout_minutes)
    if throttle.count(session, throttle.PASSWORD, since=since, email=user.email) >= settings.sign_in_max_failures:
        raise ValidationFailed(
            f"Too many wrong passwords. Try again in {settings.sign_in_lockout_minutes} minutes.",
            field="current_password",
        )
    if not verify_password(password, person_of(session, user).password_hash):
        throttle.record(session, throttle.PASSWORD, email=user.email, ip=ip_address, now=now)
        raise ValidationFailed("Your current password is not correct.", field="current_password")
    throttle.clear(session, throttle.PASSWORD, email=user.email)


def _password_by_token(
    session: Session,
    token: str,
    purpose: str,
    password: str,
    holder: User | None,
    *,
    invalid: str,
    used: str,
    now: datetime,
) -> User:
    """Use up a reset or invitation token of `holder` (None: the token is not valid) and set the
    new password on its person (added to the session)."""
    if holder is None:
        raise ValidationFailed(invalid)
    check_new_password(password, holder.email)
    user = CUSTOMERS.consume(session, token, purpose, now)
    if user is None:
        raise ValidationFailed(used)
    person = person_of(session, user)
    person.password_hash = hash_password(password)
    session.add(person)
    return user


def reset_password(session: Session, token: str, new_password: str, *, now: datetime | None = None) -> User:
    now = now or utcnow()
    user = _password_by_token(
        session,
        token,
        "reset",
        new_password,
        CUSTOMERS.holder_of(session, token, "reset", now),
        invalid="This reset link is invalid or has expired. Ask for a new one.",
        used="This reset link has already been used.",
        now=now,
    )
    throttle.clear(session, throttle.SIGN_IN, email=user.email)
    assert user.id is not None  # a stored user
    end_reset_links(session, user.id, now=now)
    revoke_sessions(session, user.id, now=now, every_membership=True)
    return user


def issue_invitation(session: Session, user: User, *, base_url: str, now: datetime | None = None) -> str:
    """A link for an invited user to join: to choose a password, or, a person who has one
    already (a user of another account), to sign in with it. Returns the link. The inviter is
    told the same either way."""
    now = now or utcnow()
    account = session.get(Account, user.account_id)
    assert account is not None  # a user's account
    secret = CUSTOMERS.issue(session, user, "invite", INVITE_TTL, now)
    link = f"{base_url}/accept-invite?token={secret}"
    step = (
        "Sign in with your Ledgerdesk password to join"
        if person_of(session, user).password_hash
        else "Choose your password here"
    )
    queue_email(
        session,
        to=user.email,
        subject=f"You are invited to {account.name} on Ledgerdesk",
        body=(
            f"Hello {user.full_name or user.email},\n\n"
            f"You have been invited to {account.name}. {step} (valid for 7 days):\n"
            f"{link}\n"
        ),
        account_id=user.account_id,
    )
    return link


def invitation_user(session: Session, token: str, *, now: datetime | None = None) -> User | None:
    """The invited user a token belongs to, without using it up (to greet them on the page)."""
    user = CUSTOMERS.holder_of(session, token, "invite", now or utcnow())
    return user if user is not None and user.status == "invited" else None


@dataclass(frozen=True)
class Invitation:
    email: str
    full_name: str
    account_name: str
    # The person has a password already (they are a user of another account): they join by signing in.
    existing: bool


def invitation(session: Session, token: str) -> Invitation | None:
    """Whom an invitation link greets (without using it up); None when it is invalid, used or expired."""
    user = invitation_user(session, token)
    if user is None:
        return None
    account = session.get_one(Account, user.account_id)
    person = person_of(session, user)
    return Invitation(
        email=user.email,
        full_name=person.full_name or user.full_name,
        account_name=account.name,
        existing=bool(person.password_hash),
    )


def _join(session: Session, user: User, person: Person) -> User:
    user.status = "active"
    user.full_name = person.full_name
    session.add(user)
    return user


INVITATION_INVALID = "This invitation link is invalid or has expired. Ask for a new invitation."
INVITATION_USED = "This invitation link has already been used."


def accept_invitation(
    session: Session, token: str, password: str, *, full_name: str | None = None, now: datetime | None = None
) -> User:
    """A new person joins by choosing their password (and name)."""
    now = now or utcnow()
    holder = invitation_user(session, token, now=now)
    if holder is not None and person_of(session, holder).password_hash:
        raise ValidationFailed("You have a Ledgerdesk password already: sign in with it to join.")
    user = _password_by_token(
        session, token, "invite", password, holder, invalid=INVITATION_INVALID, used=INVITATION_USED, now=now
    )
    person = person_of(session, user)
    if full_name and full_name.strip():
        person.full_name = " ".join(full_name.split())
    session.add(person)
    return _join(session, user, person)


def join_invitation(
    session: Session, token: str, password: str, *, ip_address: str = "", now: datetime | None = None
) -> SignInOutcome:
    """A person who has a password joins another account by signing in (throttled like sign-in):
    no second password. Returns a sign-in code for the new membership, as `sign_in` does."""
    now = now or utcnow()
    holder = invitation_user(session, token, now=now)
    if holder is None:
        return SignInOutcome(error=INVITATION_INVALID)
    person = _check_password(session, holder.email, password, ip_address, now)
    if isinstance(person, str):
        return SignInOutcome(error=person)
    user = CUSTOMERS.consume(session, token, "invite", now)
    if user is None:
        return SignInOutcome(error=INVITATION_USED)
    _join(session, user, person)
    return CUSTOMERS.handoff(session, user, now)


NOT_THE_INVITEE = "This invitation is for someone else: sign out, then open the link again."


def join_as(session: Session, actor: Actor, token: str, *, now: datetime | None = None) -> SignInOutcome:
    """The signed-in person joins the account of an invitation to them, without their password
    again: the membership becomes active and the browser gets a sign-in code for it, as a switch
    of account does (the tab's session goes on for the browser's other tabs). An invitation to
    anyone else is refused (sign out first, or sign in as the invitee), and so is the signed-in
    actor of no membership (an operator viewing an account)."""
    require(actor, Permission.INFO_VIEW)
    now = now or utcnow()
    holder = invitation_user(session, token, now=now)
    if holder is None:
        return SignInOutcome(error=INVITATION_INVALID)
    me = session.get(User, actor.user_id)
    if me is None or holder.person_id != me.person_id:
        return SignInOutcome(error=NOT_THE_INVITEE)
    user = CUSTOMERS.consume(session, token, "invite", now)
    if user is None:
        return SignInOutcome(error=INVITATION_USED)
    _join(session, user, person_of(session, me))
    return CUSTOMERS.handoff(session, user, now)


@dataclass(frozen=True)
class Membership:
    """One account the signed-in person belongs to, as the user menu lists it."""

    id: str = ""
    account_name: str = ""
    role_name: str = ""
    current: bool = False


def memberships(session: Session, actor: Actor) -> list[Membership]:
    """The accounts the actor's person is an active user of, by name; the actor's marked."""
    require(actor, Permission.INFO_VIEW)
    person_id = select(User.person_id).where(User.id == actor.user_id).scalar_subquery()
    rows = session.exec(
        select(User, Account, Role)
        .join(Account, col(Account.id) == User.account_id)
        .join(Role, col(Role.id) == User.role_id)
        .where(User.person_id == person_id, User.status == "active")
        .order_by(col(Account.name), col(User.id))
    ).all()
    return [
        Membership(id=user.public_id, account_name=account.name, role_name=role.name, current=user.id == actor.user_id)
        for user, account, role in rows
    ]


def switch_membership(
    session: Session, actor: Actor, user_public_id: str, *, now: datetime | None = None
) -> SignInOutcome:
    """Sign the browser into another active membership of the same person: a sign-in code for it
    is handed out, as `sign_in` does, so the browser's cookie changes and every page state of the
    tab is reset (`ActorChangeReset`). The actor's session goes on, in the same browser
    (`start_session`), for the other tabs that still use it: they keep their account until they
    load a page with the new cookie, and are never signed out by the switch. The next sign-in
    lands in the new account too. Any other id is not found."""
    require(actor, Permission.INFO_VIEW)
    now = now or utcnow()
    me = session.get(User, actor.user_id)
    if me is None:  # an operator viewing the account is no person's membership
        raise NotFound("You are not a user of that account.")
    target = session.exec(
        select(User).where(User.public_id == user_public_id, User.person_id == me.person_id, User.status == "active")
    ).first()
    if target is None or actor.session_id is None:
        raise NotFound("You are not a user of that account.")
    return CUSTOMERS.handoff(session, target, now)


def issue_verification(session: Session, user: User, password_hash: str, *, now: datetime) -> str:
    """The secret of a sign-up's 24-hour verification link; it keeps the chosen password."""
    return CUSTOMERS.issue(session, user, "verify", VERIFY_TTL, now, password_hash=password_hash)


VERIFICATION_INVALID = "This link is invalid, used or expired. Sign up again to get a new one."


def verify_sign_up(session: Session, token: str, *, now: datetime | None = None) -> SignInOutcome:
    """Use up a verification link: the signed-up user becomes active, the person gets the password
    chosen at sign-up (unless they have one already: then theirs stays), and the browser gets a
    sign-in code for the new account, as `sign_in` hands one out."""
    now = now or utcnow()
    if not token:
        return SignInOutcome(error=VERIFICATION_INVALID)
    used = session.execute(
        update(UserToken)
        .where(*CUSTOMERS.usable(token, "verify", now))
        .values(used_at=now)
        .returning(col(UserToken.user_id), col(UserToken.password_hash))
    ).first()
    user = session.get(User, used[0]) if used is not None else None
    if used is None or user is None or user.status != "unverified":
        return SignInOutcome(error=VERIFICATION_INVALID)
    person = person_of(session, user)
    if not person.password_hash:
        person.password_hash, person.full_name = used[1], user.full_name
        session.add(person)
    _join(session, user, person)
    return CUSTOMERS.handoff(session, user, now)
