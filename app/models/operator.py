"""The operator's staff (the company running the console), their sessions and API keys. Kept
apart from customer users: an operator is never a member of an account, and an operator session
or key is never read where a customer's is, nor the other way round."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class OperatorUser(SQLModel, table=True):
    __tablename__ = "operator_user"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("opr"), unique=True, max_length=32)
    email: str = Field(unique=True, max_length=320)
    full_name: str = Field(default="", max_length=200)
    password_hash: str = Field(default="", max_length=300)
    # active | invited | blocked
    status: str = Field(default="invited", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class OperatorSession(SQLModel, table=True):
    """A signed-in operator's browser; only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "operator_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    operator_id: int = Field(foreign_key="operator_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    last_seen_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    # Set on a "View as" session (cookie ld_view_as): the account whose console it reads, read-only.
    # Such a session is never an operator's sign-in, nor the other way round.
    viewing_account_id: int | None = Field(default=None, foreign_key="account.id")


class OperatorToken(SQLModel, table=True):
    """Single-use secrets of an operator: the invitation link, the sign-in code, the "View as" code."""

    __tablename__ = "operator_token"

    id: int | None = Field(default=None, primary_key=True)
    operator_id: int = Field(foreign_key="operator_user.id", index=True)
    purpose: str = Field(max_length=16)
    token_hash: str = Field(unique=True, max_length=64)
    # A sign-in code's: the SHA-256 of the cookie it was handed to, so only that browser can use it.
    binding_hash: str = Field(default="", max_length=64)
    # A "View as" code's: the account its session will read.
    viewing_account_id: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class OperatorApiKey(SQLModel, table=True):
    """A key of the operator API; only its SHA-256 is stored, `prefix` is the part shown in lists."""

    __tablename__ = "operator_api_key"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("okey"), unique=True, max_length=32)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=32)
    secret_hash: str = Field(unique=True, max_length=64)
    created_by_operator_id: int | None = Field(default=None, foreign_key="operator_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    deleted_at: datetime | None = None
