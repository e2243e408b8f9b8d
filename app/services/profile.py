"""The signed-in user's own profile (seed 002: "your profile settings on the far left"): full
name, picture, password and active sessions. Every user may do this for themselves whatever
their role (everyone holds info.view); nobody can reach another user's profile here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.errors import NotFound, ValidationFailed
from app.models import Account, AuthSession, Person, User, utcnow
from app.services import audit, auth, company
from app.services.accounts import person_of
from app.services.passwords import check_new_password, hash_password
from app.services.permissions import Actor, Permission, require
from app.services.storage import file_size
from app.services.timefmt import format_datetime

PICTURE_RULES = "Upload a PNG, JPEG or SVG image of at most 1 MB."


@dataclass(frozen=True)
class Profile:
    full_name: str
    email: str
    role_name: str
    picture_url: str


@dataclass(frozen=True)
class ActiveSession:
    device: str
    ip_address: str
    signed_in: str
    last_seen: str
    current: bool


@dataclass(frozen=True)
class ProfileView:
    """What Your Profile shows: the user and their active sessions, the current one marked."""

    profile: Profile
    sessions: list[ActiveSession]


def _user(session: Session, actor: Actor) -> User:
    require(actor, Permission.INFO_VIEW)
    if actor.viewing:
        raise NotFound("Your profile is the operator's own: an operator viewing an account has none here.")
    user = session.get(User, actor.user_id)
    if user is None or user.account_id != actor.account_id:
        raise NotFound("No such user.")
    return user


def _person(session: Session, actor: Actor) -> Person:
    """The person the actor is: their name, password and picture are the same in every account."""
    return person_of(session, _user(session, actor))


def picture_url(person: Person) -> str:
    """Versioned by the file's name, so a new picture is never served from a cache."""
    return f"/api/profile/picture?v={Path(person.picture_path).stem}" if person.picture_path else ""


def profile(session: Session, actor: Actor) -> Profile:
    person = _person(session, actor)
    return Profile(person.full_name, person.email, actor.role_name, picture_url(person))


def profile_view(session: Session, actor: Actor) -> ProfileView:
    mine = profile(session, actor)
    return ProfileView(mine, active_sessions(session, actor, company.account_timezone(session, actor)))


def update_name(session: Session, actor: Actor, full_name: str) -> Person:
    """The person's name, shown by every account they have joined (an account that invited them
    and that they have not joined keeps the inviter's spelling: it must not learn they exist)."""
    person = _person(session, actor)
    name = " ".join(full_name.split())
    if not name:
        raise ValidationFailed("Enter your full name.", field="full_name")
    if len(name) > 200:
        raise ValidationFailed("Use at most 200 characters.", field="full_name")
    if name == person.full_name:
        return person
    person.full_name = name
    session.add(person)
    session.execute(
        update(User)
        .where(col(User.person_id) == person.id, col(User.status) != "invited")
        .values(full_name=name)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    audit.record(session, actor, "profile.name", f"Changed their name to {name}")
    return person


def save_picture(session: Session, actor: Actor, content: bytes) -> str:
    """Store a new picture; returns the previous one's path for `company.discard_file` after commit."""
    person = _person(session, actor)
    try:
        kind = company.logo_kind(content)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="picture") from None
    account = session.get(Account, actor.account_id)
    assert account is not None, "the actor's account exists"
    company.check_storage(session, account, len(content) - file_size(person.picture_path), "picture")
    previous, person.picture_path = person.picture_path, company.store_file("pictures", person.public_id, kind, content)
    session.add(person)
    session.flush()
    audit.record(session, actor, "profile.picture", "Uploaded a new profile picture")
    return previous


def remove_picture(session: Session, actor: Actor) -> str:
    person = _person(session, actor)
    previous, person.picture_path = person.picture_path, ""
    session.add(person)
    session.flush()
    return previous


def picture_file(session: Session, actor: Actor) -> tuple[Path, str]:
    """The actor's own picture file and its media type; NotFound when there is none."""
    person = _person(session, actor)
    root = company.uploads_dir().resolve()
    path = (root / person.picture_path).resolve() if person.picture_path else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        raise NotFound("You have no picture.")
    return path, company.LOGO_TYPES.get(path.suffix.lstrip("."), "application/octet-stream")


def change_password(
    session: Session,
    actor: Actor,
    *,
    current: str,
    new: str,
    confirm: str,
    ip_address: str = "",
    now: datetime | None = None,
) -> int:
    """Set the person's new password and end every other session of theirs (in any account) and
    every reset link; the number of sessions ended. The current password is throttled like sign-in."""
    user = _user(session, actor)
    person = person_of(session, user)
    now = now or utcnow()
    auth.check_current_password(session, user, current, ip_address=ip_address, now=now)
    check_new_password(new, user.email, field="new_password")
    if new != confirm:
        raise ValidationFailed("The two new passwords differ.", field="confirm_password")
    # `current` is the password now (just checked), so comparing the texts needs no third hash.
    if new == current:
        raise ValidationFailed("Choose a password different from your current one.", field="new_password")
    person.password_hash = hash_password(new)
    session.add(person)
    audit.record(session, actor, "profile.password", "Changed their password (other sessions signed out)", now=now)
    auth.end_reset_links(session, actor.user_id, now=now)
    return auth.revoke_sessions(
        session, actor.user_id, keep_session_id=actor.session_id, now=now, every_membership=True
    )


def active_sessions(session: Session, actor: Actor, timezone: str, now: datetime | None = None) -> list[ActiveSession]:
    """The person's sessions (in any of their accounts) that are not signed out or expired, the
    most recently used first; one a browser (its tabs may hold sessions of several accounts)."""
    _user(session, actor)  # the permission and account check
    now = now or utcnow()
    rows = session.exec(
        select(AuthSession)
        .where(
            col(AuthSession.user_id).in_(auth.memberships_of_person(actor.user_id)),
            col(AuthSession.revoked_at).is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(col(AuthSession.last_seen_at).desc(), col(AuthSession.id).desc())
    ).all()
    current = next((row.browser or row.id for row in rows if row.id == actor.session_id), None)
    browsers: dict[str | int | None, AuthSession] = {}
    for row in rows:
        browsers.setdefault(row.browser or row.id, row)
    return [
        ActiveSession(
            device=describe_device(row.user_agent),
            ip_address=row.ip_address or "Unknown",
            signed_in=format_datetime(row.created_at, timezone),
            last_seen=format_datetime(row.last_seen_at, timezone),
            current=key == current,
        )
        for key, row in browsers.items()
    ]


def sign_out_other_sessions(session: Session, actor: Actor, now: datetime | None = None) -> int:
    _user(session, actor)  # the permission and account check
    return auth.revoke_sessions(
        session, actor.user_id, keep_session_id=actor.session_id, now=now, every_membership=True
    )


# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """ "Chrome on macOS" from a User-Agent header; "Unknown device" when nothing is recognised."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), "")
    system = next((name for token, name in _SYSTEMS if re.search(rf"\b{re.escape(token)}", user_agent)), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
