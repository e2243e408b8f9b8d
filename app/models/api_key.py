"""API keys of the metering API, and the answers to its idempotent requests."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, PrimaryKeyConstraint, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class ApiKey(SQLModel, table=True):
    """Only the SHA-256 of the key is stored; `prefix` is the part shown in lists."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("key"), unique=True, max_length=32)
    account_id: int = Field(foreign_key="account.id", index=True)
    name: str = Field(default="", max_length=100)
    prefix: str = Field(max_length=32)
    secret_hash: str = Field(unique=True, max_length=64)
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    deleted_at: datetime | None = None
    # The key's own daily (UTC) budget, None for none. While it has one, each usage debit made
    # with the key counts in `used_today_cents` (of `usage_day`) in the debit's statement, and
    # its open holds in `held_cents`; keys without a budget are never written by a debit.
    daily_budget_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    usage_day: date | None = None
    used_today_cents: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0")
    )
    held_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0"))


class MeteringRequest(SQLModel, table=True):
    """A metering call made with an Idempotency-Key: its body's fingerprint and its first answer."""

    __tablename__ = "metering_request"
    __table_args__ = (PrimaryKeyConstraint("account_id", "id"), UniqueConstraint("account_id", "idempotency_key"))

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    idempotency_key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    status_code: int
    response_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for the account's webhook URL (spend notifications, test events)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        Index("ix_webhook_delivery_account_created", "account_id", "created_at"),
        UniqueConstraint("account_id", "public_id", name="uq_webhook_delivery_account_public_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("msg", 16), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    event_type: str = Field(max_length=64)
    url: str = Field(max_length=500)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    # pending | delivered | failed
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_status_code: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class WebhookAttempt(SQLModel, table=True):
    """Each POST of a delivery: when, the answer's status code (None when there was none), why."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        ForeignKeyConstraint(
            ["account_id", "delivery_id"],
            ["webhook_delivery.account_id", "webhook_delivery.id"],
            name="fk_webhook_attempt_delivery_id_webhook_delivery",
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    # The delivery's account, so the attempts live with it when the tables are distributed by account.
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    delivery_id: int = Field(index=True)
    attempted_at: datetime = Field(default_factory=utcnow)
    status_code: int | None = None
    error: str = Field(default="", max_length=500)
    duration_ms: int = 0
