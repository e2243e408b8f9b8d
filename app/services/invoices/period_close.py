"""The period close: once per account and month, the usage not yet invoiced (of which only the
overage is charged) and the renewals for the next month; and the monthly job that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from app.jobs.queue import enqueue
from app.models import Account, Invoice, LedgerEntry, utcnow
from app.services import grants
from app.services.customers import account_id_of, account_of
from app.services.invoices.issuing import LineItem, by_key, due_date, issue_invoice
from app.services.invoices.periods import next_month, period_end_after, period_label, previous_month
from app.services.ledger import EXPIRED
from app.services.plans import get_plan
from app.services.product_catalogue import monthly_charges
from app.services.team import seat_limit
from app.services.timefmt import format_date


@dataclass(frozen=True)
class PeriodBill:
    """What the close of the period ending `period_end` bills: the lines, the overage among them,
    and the newest uninvoiced usage entry it covers (None when there was no usage)."""

    lines: list[LineItem]
    overage_cents: int
    last_usage_id: int | None
    # The plan's renewal among the lines.
    plan_cents: int = 0

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)


def _uninvoiced_usage(account_id: int, boundary: datetime) -> tuple:
    return (
        LedgerEntry.account_id == account_id,
        LedgerEntry.amount_cents < 0,
        # What a credit grant had left at its expiry is not usage.
        LedgerEntry.source != EXPIRED,
        col(LedgerEntry.invoice_id).is_(None),
        LedgerEntry.created_at < boundary,
    )


def period_bill(session: Session, account: Account, period_end: date) -> PeriodBill:
    """The lines `close_period` issues for the period ending at `period_end`; also the preview of
    the next invoice (with a future `period_end`: the usage so far)."""
    boundary = datetime.combine(period_end, time(), tzinfo=UTC)
    used, last_id = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0), func.max(LedgerEntry.id)).where(
            *_uninvoiced_usage(account_id_of(account), boundary)
        )
    ).one()
    usage_cents = -int(used)
    new_debt = _debt_at(session, account_id_of(account), boundary) - _unapplied_overage(
        session, account_id_of(account), boundary
    )
    overage = min(max(new_debt, 0), usage_cents)
    # Of the usage paid from credits, what promotional or granted credits paid (as allocated).
    promotional = (
        min(
            grants.promotional_paid(
                session,
                account_id_of(account),
                *_uninvoiced_usage(account_id_of(account), boundary),
                col(LedgerEntry.id) <= last_id,
            ),
            usage_cents - overage,
        )
        if last_id is not None
        else 0
    )
    lines: list[LineItem] = []
    if usage_cents:
        lines.append(LineItem(f"Usage through {format_date(period_end - timedelta(days=1))}", usage_cents))
        if promotional > 0:
            lines.append(LineItem("Paid from promotional credits", -promotional))
        if usage_cents - overage - promotional > 0:
            lines.append(LineItem("Paid from your usage credits", overage - usage_cents + promotional))
    renewal = renewal_lines(session, account, period_end)
    lines.extend(renewal)
    plan_cents = renewal[0].amount_cents if renewal and get_plan(account.plan_code).seat_price_cents > 0 else 0
    return PeriodBill(lines, overage, last_id, plan_cents)


def renewal_lines(session: Session, account: Account, period_end: date) -> list[LineItem]:
    """Everything that renews for the month starting at `period_end`: the plan's seats and the
    paid product plans."""
    lines: list[LineItem] = []
    plan = get_plan(account.plan_code)
    renewal = period_label(period_end, next_month(period_end))
    if plan.seat_price_cents > 0:
        seats = seat_limit(plan, account.seats_purchased) or 1
        lines.append(LineItem(f"{plan.name} plan seats, {renewal}", plan.seat_price_cents * seats, quantity=seats))
    for description, cents in monthly_charges(session, account_id_of(account)):
        lines.append(LineItem(f"{description}, {renewal}", cents))
    return lines


def close_period(session: Session, account_id: int, period_end: date, now: datetime | None = None) -> Invoice | None:
    """Bill the period that ends at midnight UTC starting `period_end` (the first day of the
    next month): uninvoiced usage from before then, of which the part below zero (overage) is
    charged, and the plan's renewal for the next month. Idempotent by (account, period): running
    it again returns the same invoice and bills nothing more. None when there is nothing to bill."""
    key = f"period:{account_id}:{period_end.isoformat()}"
    if (found := by_key(session, account_id, key)) is not None:
        return found
    now = now or utcnow()
    account = account_of(session, account_id)
    # The invoice says what promotional credits paid: record every draw up to now first.
    grants.allocate(session, account_id)
    bill = period_bill(session, account, period_end)
    if not bill.lines:
        return None
    invoice, created = issue_invoice(
        session,
        account_id,
        source="period_close",
        lines=bill.lines,
        idempotency_key=key,
        status="open" if bill.total_cents > 0 else "paid",
        due_at=due_date(session, account_id, now),
        overage_cents=bill.overage_cents,
        plan_cents=bill.plan_cents,
        period_start=previous_month(period_end),
        period_end=period_end,
        now=now,
    )
    if created and bill.last_usage_id is not None:
        boundary = datetime.combine(period_end, time(), tzinfo=UTC)
        session.exec(
            update(LedgerEntry)
            .where(*_uninvoiced_usage(account_id, boundary), col(LedgerEntry.id) <= bill.last_usage_id)
            .values(invoice_id=invoice.id)
        )
        session.flush()
    return invoice


def _debt_at(session: Session, account_id: int, boundary: datetime) -> int:
    """How far below zero the balance was at `boundary` (0 when it was not)."""
    balance = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.created_at < boundary
        )
    ).one()
    return max(-int(balance), 0)


def _unapplied_overage(session: Session, account_id: int, boundary: datetime) -> int:
    """Overage invoiced before `boundary` whose payment had not reached the ledger by then."""
    billed = session.exec(
        select(func.coalesce(func.sum(Invoice.overage_cents), 0)).where(
            Invoice.account_id == account_id, Invoice.status != "void", Invoice.issued_at < boundary
        )
    ).one()
    applied = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.source == "invoice_applied",
            LedgerEntry.created_at < boundary,
        )
    ).one()
    return int(billed) - int(applied)


def schedule_period_close(session: Session, now: datetime | None = None) -> None:
    """Make sure job "close_periods" runs when the current UTC month ends. That job closes the
    month for every account and schedules the next one, so calling this once keeps it going."""
    period_end = period_end_after(now or utcnow())
    enqueue(
        session,
        "close_periods",
        {"period_end": period_end.isoformat()},
        dedupe_key=f"close_periods:{period_end.isoformat()}",
        run_at=datetime.combine(period_end, time(), tzinfo=UTC),
    )


def close_periods(session: Session, period_end: date) -> None:
    """Job "close_periods": one job "close_period" per account (each its own transaction), then
    the next month's run."""
    boundary = datetime.combine(period_end, time(), tzinfo=UTC)
    for account_id in session.exec(select(Account.id).order_by(col(Account.id))):
        enqueue(
            session,
            "close_period",
            {"account_id": account_id, "period_end": period_end.isoformat()},
            dedupe_key=f"close_period:{account_id}:{period_end.isoformat()}",
            run_at=boundary,
        )
    schedule_period_close(session, boundary)
