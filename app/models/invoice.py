"""Invoices, their lines, the per-account invoice counter and tax registrations.

An invoice is frozen once issued: its buyer details (address, PO number, tax registrations) are
copied onto it, and only its status, payment date and payment change afterwards. Corrections
are credit notes (kind "credit_note", negative total, `credited_invoice_id` set) or new invoices."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class InvoiceCounter(SQLModel, table=True):
    """One row per account: the next invoice number, taken with UPDATE … RETURNING in the
    issuing transaction, so numbers have no gaps (a rollback gives the number back) and no
    duplicates (the row lock serializes issuers)."""

    __tablename__ = "invoice_counter"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    next_number: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))


class Invoice(SQLModel, table=True):
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "number", name="uq_invoice_account_number"),
        UniqueConstraint("account_id", "public_id", name="uq_invoice_account_public_id"),
        UniqueConstraint("account_id", "idempotency_key", name="uq_invoice_account_idempotency_key"),
        Index("ix_invoice_account_issued", "account_id", "issued_at"),
        ForeignKeyConstraint(
            ["account_id", "credited_invoice_id"],
            ["invoice.account_id", "invoice.id"],
            name="fk_invoice_credited_invoice_id_invoice",
        ),
        ForeignKeyConstraint(
            ["account_id", "payment_id"], ["payment.account_id", "payment.id"], name="fk_invoice_payment_id_payment"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("in", 14), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    # Sequential per account, from 1; shown with the account's prefix ("7KQ2M9XW3B-0001").
    number: int
    # invoice | credit_note
    kind: str = Field(default="invoice", max_length=16)
    # purchase | auto_recharge | period_close | plan_change | credit_note
    source: str = Field(max_length=24)
    # draft | open | paid | void | refunded (its payment, in full) | disputed (while a dispute holds it)
    status: str = Field(default="draft", max_length=8)
    currency: str = Field(default="usd", max_length=3)
    total_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The part of the total that is post-paid usage below zero: paying it credits the ledger
    # (source "invoice_applied") so the balance comes back.
    overage_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The part of the total that renews the plan for the next period (period close), less what
    # plan changes took off it: what paying it pays for the plan (the credit cap of plan changes).
    plan_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0"))
    issued_at: datetime = Field(default_factory=utcnow)
    due_at: datetime | None = None
    paid_at: datetime | None = None
    period_start: date | None = None
    period_end: date | None = None
    # Makes issuing idempotent: "receipt:<payment>", "period:<account>:<end>", "plan:<account>:<key>".
    idempotency_key: str = Field(max_length=200)
    credited_invoice_id: int | None = None
    # Dunning of a renewal charged off-session (period close): the charges that failed so far,
    # and when the next is made (None when none is planned).
    failed_collections: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_collection_at: datetime | None = None
    # The payment that paid it, or the latest attempt to.
    payment_id: int | None = Field(default=None, index=True)
    bill_to_name: str = Field(default="", max_length=200)
    bill_to_address: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    po_number: str = Field(default="", max_length=100)
    billing_email: str = Field(default="", max_length=320)
    # One registration per line, as printed ("European VAT number DE123456789").
    tax_registrations: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    memo: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class InvoiceLine(SQLModel, table=True):
    __tablename__ = "invoice_line"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        ForeignKeyConstraint(
            ["account_id", "invoice_id"],
            ["invoice.account_id", "invoice.id"],
            name="fk_invoice_line_invoice_id_invoice",
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    # The invoice's account, so the lines live with it when the tables are distributed by account.
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    invoice_id: int = Field(index=True)
    position: int
    description: str = Field(max_length=300)
    quantity: int = 1
    unit_amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class TaxRegistration(SQLModel, table=True):
    """A customer tax ID, mirrored on the Stripe customer, which verifies it."""

    __tablename__ = "tax_registration"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "type", "value", name="uq_tax_registration_account_type_value"),
        UniqueConstraint("account_id", "public_id", name="uq_tax_registration_account_public_id"),
        UniqueConstraint("account_id", "stripe_tax_id", name="uq_tax_registration_account_stripe_tax_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("tax", 10), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True, index=True)
    country: str = Field(max_length=2)
    # Stripe's tax ID type: eu_vat, gb_vat, au_abn, ...
    type: str = Field(max_length=16)
    # Normalized (python-stdnum's compact form, with the country prefix for VAT numbers).
    value: str = Field(max_length=64)
    # Stripe's verification status: pending | verified | unverified | unavailable
    status: str = Field(default="unverified", max_length=16)
    # Stripe's webhooks name the tax ID and its customer: found by (account_id, stripe_tax_id).
    stripe_tax_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
