"""Billing: settings per account, the append-only ledger, payments, saved payment methods,
and received Stripe events."""

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


class BillingSettings(SQLModel, table=True):
    """One row per account: the settings of the seed-003 billing pages."""

    __tablename__ = "billing_settings"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    billing_email: str = Field(default="", max_length=320)
    invoice_company_name: str = Field(default="", max_length=200)
    invoice_address1: str = Field(default="", max_length=200)
    invoice_address2: str = Field(default="", max_length=200)
    invoice_city: str = Field(default="", max_length=100)
    invoice_postal_code: str = Field(default="", max_length=20)
    invoice_region: str = Field(default="", max_length=100)
    invoice_country: str = Field(default="", max_length=2)
    invoice_po_number: str = Field(default="", max_length=100)
    # The forms' values. What is in force on each debit is copied to CreditBalance.
    auto_recharge_enabled: bool = False
    auto_recharge_threshold_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    auto_recharge_amount_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Failed recharges in a row; at three, auto recharge turns itself off and says why.
    auto_recharge_failures: int = 0
    auto_recharge_disabled_reason: str = Field(default="", max_length=500)
    # At most this much of automatic top-ups per calendar month (UTC), None for no ceiling. A
    # recharge that would pass it pauses auto recharge until `auto_recharge_paused_until` (the
    # next month's first midnight UTC); the contacts are emailed once a month, the month's first
    # day recorded in `auto_recharge_ceiling_emailed_for`.
    auto_recharge_monthly_ceiling_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    auto_recharge_paused_until: datetime | None = None
    auto_recharge_ceiling_emailed_for: date | None = None
    spend_management_enabled: bool = False
    daily_budget_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    daily_notify_threshold_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    webhook_url: str = Field(default="", max_length=500)
    # Standard Webhooks signing secret ("whsec_" + base64), shown on the Spend Management page.
    webhook_secret: str = Field(default="", max_length=100)
    # Invoice-priced (custom pricing) accounts pay by invoice and have no card settings.
    invoice_priced: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class CreditBalance(SQLModel, table=True):
    """The account's metering row: everything a debit reads and writes, so that a metered call is
    one conditional UPDATE plus its ledger row. The cached balance always equals the sum of the
    account's ledger entries. Limits here are the ones in force (None = off), copied from
    BillingSettings by the services that save those forms."""

    __tablename__ = "credit_balance"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    balance_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The post-paid credit line ("Overage Protection"): usage may go this far below zero.
    overage_credit_line_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Spend management, per UTC day: usage of `usage_day`, the budget that refuses calls once
    # reached, the email/webhook threshold, and the days each notification last fired.
    usage_day: date | None = None
    used_today_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # Usage debits (metered calls) of `usage_day`: the plan's API requests per UTC day.
    requests_today: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    daily_budget_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    daily_notify_threshold_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    threshold_notified_on: date | None = None
    budget_notified_on: date | None = None
    # Auto recharge: armed at this balance; one recharge in flight at a time, numbered by seq.
    recharge_threshold_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    recharge_in_flight: bool = False
    recharge_seq: int = 0
    # Credits reserved by open holds (CreditHold): a debit or a new hold may use only what they
    # leave, checked in the debit's own conditional UPDATE.
    held_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0"))
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """Append-only. Credits positive, debits negative. Never updated except `invoice_id`,
    which marks usage as billed."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        # On PostgreSQL the primary key is this index; SQLite's is the rowid alone (distribution.py).
        Index("ix_ledger_entry_account_id_id", "account_id", "id").ddl_if(dialect="sqlite"),
        Index("ix_ledger_entry_account_source_id", "account_id", "source", "id"),
        Index("ix_ledger_entry_account_created", "account_id", "created_at"),
        UniqueConstraint("account_id", "public_id", name="uq_ledger_entry_account_public_id"),
        UniqueConstraint("account_id", "idempotency_key", name="uq_ledger_entry_account_idempotency_key"),
    )

    # SQLite only auto-increments INTEGER primary keys; PostgreSQL gets a BIGINT identity.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    public_id: str = Field(default_factory=lambda: public_id("txn", 14), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_after_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # purchase | auto_recharge | usage | invoice_applied | grant | refund | dispute | adjustment | plan_change
    # | expired (what was left of a credit grant at its expiry)
    source: str = Field(max_length=32)
    description: str = Field(default="", max_length=500)
    idempotency_key: str = Field(max_length=200)
    invoice_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # The API key a usage debit was made with (None for every other entry). No foreign key: a
    # key is only ever soft-deleted, and the debit's INSERT then costs no lookup in api_key.
    api_key_id: int | None = Field(default=None)


class Payment(SQLModel, table=True):
    """A payment attempt through Stripe (a top-up, a recharge, an invoice or a plan change) and
    what became of it; its lifecycle is app.services.payments."""

    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        Index("ix_payment_account_created", "account_id", "created_at"),
        UniqueConstraint("account_id", "public_id", name="uq_payment_account_public_id"),
        UniqueConstraint("account_id", "idempotency_key", name="uq_payment_account_idempotency_key"),
        UniqueConstraint("account_id", "stripe_payment_intent_id", name="uq_payment_account_stripe_payment_intent_id"),
        UniqueConstraint(
            "account_id", "stripe_checkout_session_id", name="uq_payment_account_stripe_checkout_session_id"
        ),
        # Invoices and plan changes point back at their latest payment, so these keys are added
        # after the tables (use_alter). Nothing deletes invoices, plan changes or payments.
        ForeignKeyConstraint(
            ["account_id", "invoice_id"],
            ["invoice.account_id", "invoice.id"],
            name="fk_payment_invoice_id",
            use_alter=True,
        ),
        ForeignKeyConstraint(
            ["account_id", "plan_change_id"],
            ["plan_change.account_id", "plan_change.id"],
            name="fk_payment_plan_change_id",
            use_alter=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    # Stripe's webhooks name the payment (metadata), its intent or its Checkout Session, and the
    # customer, hence the account: each is found by account and that id (a unique constraint's index).
    public_id: str = Field(default_factory=lambda: public_id("pay"), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # card | crypto | auto_recharge | invoice | plan
    method: str = Field(max_length=16)
    # pending | requires_action | processing | succeeded | failed | canceled, and after success
    # partially_refunded | refunded | disputed | dispute_won | dispute_lost
    status: str = Field(default="pending", max_length=24)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=64)
    stripe_checkout_session_id: str | None = Field(default=None, max_length=80)
    stripe_payment_method_id: str = Field(default="", max_length=64)
    failure_message: str = Field(default="", max_length=500)
    idempotency_key: str = Field(max_length=200)
    ledger_entry_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # What Stripe has refunded of this payment so far (the charge's amount_refunded).
    refunded_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0, server_default="0"))
    # What an invoice or plan-change payment pays for (its keys are in __table_args__).
    invoice_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True, index=True))
    plan_change_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True, index=True))
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # When Stripe's answer to the charge was lost (a timeout or a 5xx); cleared once Stripe has
    # told us what became of it (app.services.reconciliation).
    outcome_unknown_at: datetime | None = Field(default=None, index=True)


class PaymentMethod(SQLModel, table=True):
    """Our copy of a saved Stripe payment method, so pages need not call Stripe to list them."""

    __tablename__ = "payment_method"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "stripe_payment_method_id", name="uq_payment_method_account_stripe_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True, index=True)
    stripe_payment_method_id: str = Field(max_length=64)
    # card | sepa_debit
    kind: str = Field(default="card", max_length=16)
    brand: str = Field(default="", max_length=32)
    last4: str = Field(default="", max_length=4)
    exp_month: int = 0
    exp_year: int = 0
    holder_name: str = Field(default="", max_length=200)
    bank_code: str = Field(default="", max_length=32)
    is_default: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class StripeEvent(SQLModel, table=True):
    """Each Stripe webhook event, stored once by its id; replays are ignored."""

    __tablename__ = "stripe_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=80)
    type: str = Field(max_length=80)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class CreditGrant(SQLModel, table=True):
    """Promotional or operator-granted credits (one credit ledger entry each) that debits draw
    from before purchased credits, soonest expiry first, then highest priority. `remaining` is
    kept by the allocation job (app.services.grants), which walks the ledger after the debits;
    at `expires_at` what remains is taken off by one `expired` ledger entry and `expired` is set."""

    __tablename__ = "credit_grant"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "public_id", name="uq_credit_grant_account_public_id"),
        UniqueConstraint("account_id", "ledger_entry_id", name="uq_credit_grant_account_ledger_entry_id"),
        Index("ix_credit_grant_account_open", "account_id", "expired", "expires_at"),
        Index("ix_credit_grant_due", "expired", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("grt", 12), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    ledger_entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # None: never expires (still drawn before purchased credits).
    expires_at: datetime | None = None
    # Among grants expiring at the same moment (or never), the higher is drawn first.
    priority: int = 0
    remaining_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    expired: bool = False
    expired_entry_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class GrantDraw(SQLModel, table=True):
    """How much of a debit ledger entry one grant paid (written by the allocation job)."""

    __tablename__ = "grant_draw"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "ledger_entry_id", "grant_id", name="uq_grant_draw_account_entry_grant"),
        ForeignKeyConstraint(
            ["account_id", "grant_id"],
            ["credit_grant.account_id", "credit_grant.id"],
            name="fk_grant_draw_grant_id_credit_grant",
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    ledger_entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    grant_id: int = Field(index=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class GrantCursor(SQLModel, table=True):
    """Per account with grants: the newest ledger entry the allocation has walked, and the
    purchased (non-grant) credits left at that point (negative: debt past every credit)."""

    __tablename__ = "grant_cursor"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    last_entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    purchased_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class CreditHold(SQLModel, table=True):
    """Credits reserved for a long-running call (POST /api/v1/holds), counted in
    CreditBalance.held_cents while open; captured (one usage debit of at most the amount),
    released, or expired at `expires_at`. Only a conditional UPDATE from status "open" closes a
    hold, so exactly one of capture, release and expiry wins (app.services.holds)."""

    __tablename__ = "credit_hold"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "public_id", name="uq_credit_hold_account_public_id"),
        Index("ix_credit_hold_account_status", "account_id", "status"),
        Index("ix_credit_hold_status_expires", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    public_id: str = Field(default_factory=lambda: public_id("hold", 14), max_length=32)
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    api_key_id: int | None = Field(default=None)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    # What this hold adds to its key's held_cents (the amount when the key had a daily budget).
    key_held_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    description: str = Field(default="", max_length=500)
    # open | captured | released | expired
    status: str = Field(default="open", max_length=16)
    captured_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    ledger_entry_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The answer of the capture or release that closed it, given again to a repeated request.
    closing_json: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None


class UsageRollup(SQLModel, table=True):
    """Usage debits summed per day of the account's timezone, API key and description: what the
    Usage page reads instead of the ledger (app/services/usage.py). Written only by the rollup
    job, under the account's `UsageRollupState` lock."""

    __tablename__ = "usage_rollup"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    day: date = Field(primary_key=True)
    # 0 for usage debited without a key (the console's own usage debits).
    api_key_id: int = Field(default=0, sa_column=Column(BigInteger, primary_key=True, default=0))
    # "" stands for the day's descriptions past the first usage.MAX_DESCRIPTIONS_PER_DAY.
    description: str = Field(default="", primary_key=True, max_length=500)
    cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    calls: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class UsageRollupState(SQLModel, table=True):
    """The account's rollup watermark: usage entries up to `last_entry_id` are in usage_rollup,
    in days of `timezone` (the account's timezone when they were rolled up)."""

    __tablename__ = "usage_rollup_state"

    account_id: int = Field(foreign_key="account.id", primary_key=True)
    last_entry_id: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    timezone: str = Field(default="UTC", max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)
