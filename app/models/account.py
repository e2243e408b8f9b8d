from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("acct", 10), unique=True, max_length=32)
    name: str = Field(max_length=200)
    logo_path: str = Field(default="", max_length=300)
    domain: str = Field(default="", max_length=253)
    timezone: str = Field(default="UTC", max_length=64)
    language: str = Field(default="en", max_length=16)
    plan_code: str = Field(default="basic", max_length=32)
    # Seats bought on a paid plan; the seat limit is max(the plan's included seats, this).
    seats_purchased: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    plan_status: str = Field(default="active", max_length=16, sa_column_kwargs={"server_default": "active"})
    # The billing period (a calendar month in UTC) the paid plan was last settled for; None on
    # plans that cost nothing.
    plan_period_start: datetime | None = None
    plan_renews_at: datetime | None = None
    # Set by an operator: metering calls are refused (403 account_suspended, in the debit rule
    # itself) and the console is read-only until it is cleared.
    suspended_at: datetime | None = None
    # When an owner hid the Overview's getting-started list before finishing it.
    getting_started_dismissed_at: datetime | None = None
    # The account's Stripe customer, created on first use (app.services.customers). Here, on the
    # global table, because every Stripe object names its customer: a webhook finds the account by
    # it first, then the account's rows by (account_id, Stripe id), on the account's node alone.
    stripe_customer_id: str = Field(default="", index=True, max_length=64, sa_column_kwargs={"server_default": ""})
    created_at: datetime = Field(default_factory=utcnow)


class PlanChange(SQLModel, table=True):
    """A confirmed change of plan or seats and how it ended. Written before the card is charged,
    so a replayed confirmation finds it and charges nothing more, and a payment that finishes
    later (after 3-D Secure, or seen by Stripe's webhook) applies exactly the change that was
    confirmed, at the amount that was shown."""

    __tablename__ = "plan_change"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        Index("ix_plan_change_account_status", "account_id", "status"),
        UniqueConstraint("account_id", "public_id", name="uq_plan_change_account_public_id"),
        UniqueConstraint("account_id", "idempotency_key", name="uq_plan_change_account_idempotency_key"),
        ForeignKeyConstraint(
            ["account_id", "payment_id"], ["payment.account_id", "payment.id"], name="fk_plan_change_payment_id_payment"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("chg", 12), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    from_plan_code: str = Field(max_length=32)
    to_plan_code: str = Field(max_length=32)
    from_seats: int
    to_seats: int
    # The prorated settlement: > 0 charged to the card, < 0 given back, as the two below say.
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Of a negative amount: what was credited to the balance (at most what was paid for the
    # period and not given back yet) and what was taken off the period's open renewal invoice
    # (voided and reissued for less). Unpaid time is never credited.
    credited_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    invoice_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    # When the amount was worked out; its UTC day is the first day the change is settled for.
    effective_at: datetime
    # pending (waiting for the card) | applied | failed
    status: str = Field(default="pending", max_length=16)
    failure_message: str = Field(default="", max_length=500)
    payment_id: int | None = None
    # "<account id>:<request key>": one change per confirmation.
    idempotency_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    applied_at: datetime | None = None
