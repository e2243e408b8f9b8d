"""Upcoming payments (seed 001: "budget for upcoming payments accordingly"): the next monthly
invoice as the period close would issue it if the month ended now. The lines come from the
period close's own code (`invoices.period_bill`), so the preview and the invoice cannot differ
for the same usage and seats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlmodel import Session

from app.models import utcnow
from app.services import invoices
from app.services.customers import account_of
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.payment_methods import default_method, label
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_day


@dataclass(frozen=True)
class UpcomingLine:
    description: str
    amount: str


@dataclass(frozen=True)
class NextPayment:
    issued_on: str
    total_cents: int
    total: str
    lines: list[UpcomingLine]
    how_paid: str

    @property
    def nothing_due(self) -> bool:
        return self.total_cents <= 0


def for_billing(session: Session, actor: Actor, now: datetime | None = None) -> NextPayment:
    """The Overview's "Next payment"."""
    require(actor, Permission.BILLING_VIEW)
    return next_payment(session, actor.account_id, now)


def for_plan(session: Session, actor: Actor, now: datetime | None = None) -> NextPayment:
    """The Plan page's "Next payment", for whoever may change the plan and seats."""
    require(actor, Permission.PLAN_MANAGE)
    return next_payment(session, actor.account_id, now)


def next_payment(session: Session, account_id: int, now: datetime | None = None) -> NextPayment:
    now = now or utcnow()
    account = account_of(session, account_id)
    period_end = invoices.period_end_after(now)
    bill = invoices.period_bill(session, account, period_end)
    issued_at = datetime.combine(period_end, time(), tzinfo=UTC)
    return NextPayment(
        issued_on=format_day(issued_at, account.timezone),
        total_cents=max(bill.total_cents, 0),
        total=format_usd(max(bill.total_cents, 0)),
        lines=[UpcomingLine(line.description, format_usd(line.amount_cents)) for line in bill.lines],
        how_paid=_how_paid(session, account_id),
    )


def _how_paid(session: Session, account_id: int) -> str:
    if billing_settings(session, account_id).invoice_priced:
        return f"Invoiced; due {invoices.NET_DAYS_INVOICE_PRICED} days after the invoice date."
    default = default_method(session, account_id)
    paid_with = f"your default payment method, {label(default)}" if default else "a saved payment method"
    return f"Due {invoices.NET_DAYS_CARD} days after the invoice date; pay it on the Invoices page with {paid_with}."
