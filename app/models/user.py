from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class Role(SQLModel, table=True):
    """Built-in roles have no account; custom roles belong to one account."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=100)
    permissions: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    builtin: bool = Field(default=False)


class Person(SQLModel, table=True):
    """Whom an email and a password belong to. A person is a `User` (a membership) in each account
    they belong to; sessions, roles, permissions and audit entries are per membership."""

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("per"), unique=True, max_length=32)
    email: str = Field(unique=True, max_length=320)
    full_name: str = Field(default="", max_length=200)
    # "" until the person chose one (invited, or signed up and not verified yet).
    password_hash: str = Field(default="", max_length=300)
    # The profile picture, relative to the uploads directory ("" when none).
    picture_path: str = Field(default="", max_length=300)
    # The membership (user id) signed into last: where the next sign-in lands.
    last_user_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    """A person's membership of one account."""

    __table_args__ = (UniqueConstraint("account_id", "email", name="uq_user_account_id_email"),)

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("usr"), unique=True, max_length=32)
    account_id: int = Field(foreign_key="account.id", index=True)
    role_id: int = Field(foreign_key="role.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    # The person's email (it never changes), here so an account's users are found without a join.
    email: str = Field(max_length=320)
    # The name the account shows: the inviter's until the person joins, then the person's
    # (a profile change writes it to every membership).
    full_name: str = Field(default="", max_length=200)
    # active | invited | blocked | unverified (signed up, the email's link not used yet)
    status: str = Field(default="active", max_length=16)
    # The products this user may use, comma-separated codes; "" means every product of the account.
    products: str = Field(default="", max_length=300)
    # The last chat message (app.services.chat) this user has read in the account's conversation.
    chat_read_id: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    last_seen_at: datetime = Field(default_factory=utcnow)
    user_agent: str = Field(default="", max_length=300)
    ip_address: str = Field(default="", max_length=64)
    # One browser's sessions share it: a sign-in starts one, a switch of account keeps it (the
    # other tabs keep the session they had), and signing out ends them all.
    browser: str = Field(default="", max_length=64, index=True)
    revoked_at: datetime | None = None


class UserToken(SQLModel, table=True):
    """Single-use emailed links: password reset, invitation, sign-up verification, sign-in exchange."""

    __tablename__ = "user_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    purpose: str = Field(max_length=16)
    token_hash: str = Field(unique=True, max_length=64)
    # A sign-in code's: the SHA-256 of the cookie it was handed to, so only that browser can use it.
    binding_hash: str = Field(default="", max_length=64)
    # A sign-up's verification link: the password chosen, given to the person when the link is used
    # (not before, so nobody sets a password for an email they cannot read).
    password_hash: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class AuthAttempt(SQLModel, table=True):
    """What the sign-in, password-reset and current-password throttles count (`app.services.throttle`):
    a failed sign-in ("sign_in"), a reset request ("reset"), a wrong current password ("password"), a sign-up ("sign_up").
    `ip_key` is the client's address, an IPv6 one as its /64 network; rows older than a day are pruned."""

    __tablename__ = "auth_attempt"
    __table_args__ = (
        Index("ix_auth_attempt_kind_email_created", "kind", "email", "created_at"),
        Index("ix_auth_attempt_kind_ip_created", "kind", "ip_key", "created_at"),
        Index("ix_auth_attempt_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    email: str = Field(max_length=320)
    ip_key: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
