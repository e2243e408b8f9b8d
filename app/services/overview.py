"""The figures of the Billing Overview (DESIGN §5, seed 003), all in cents. Days are UTC days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import NotFound
from app.models import Account, BillingSettings, CreditBalance, LedgerEntry, utcnow
from app.services.ledger import EXPIRED, METERING_COLUMNS, BalanceAfter, held_now
from app.services.plans import get_plan

RUNWAY_WINDOW_DAYS = 14


@dataclass(frozen=True)
class Overview:
    total_credits: int
    # Usage of earlier periods, already invoiced: Total − earlier − this period = Remaining.
    earlier_usage: int
    usage_this_period: int
    remaining_credits: int
    overage_protection: int
    used_today: int
    daily_budget: int | None
    available_to_use: int
    # Reserved by open holds (not expired): not available to use.
    held: int = 0


def billing_settings(session: Session, account_id: int) -> BillingSettings:
    """The account's settings row, created with defaults (and its plan's invoice pricing) on first use."""
    row = session.get(BillingSettings, account_id)
    if row is not None:
        return row
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    try:
        with session.begin_nested():
            row = BillingSettings(account_id=account_id, invoice_priced=get_plan(account.plan_code).invoice_priced)
            session.add(row)
    except IntegrityError:
        row = session.get(BillingSettings, account_id)
    assert row is not None, "the settings row exists once the insert lost the race"
    return row


def overview(session: Session, account_id: int, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    amount = col(LedgerEntry.amount_cents)
    invoiced = col(LedgerEntry.invoice_id).is_not(None)
    # Expired grant credits are no longer credits (Total Credits leaves them out), nor usage.
    expired = col(LedgerEntry.source) == EXPIRED
    debit = (amount < 0) & ~expired
    total_credits, invoiced_debits, uninvoiced_debits = session.exec(
        select(
            func.coalesce(func.sum(case((amount > 0, amount), (expired, amount), else_=0)), 0),
            func.coalesce(func.sum(case((debit & invoiced, amount), else_=0)), 0),
            func.coalesce(func.sum(case((debit & ~invoiced, amount), else_=0)), 0),
        ).where(LedgerEntry.account_id == account_id)
    ).one()
    # sqlmodel's `select` overloads stop at four columns: the metering row's are read untyped.
    query = cast(Any, select)(*METERING_COLUMNS).where(col(CreditBalance.account_id) == account_id)
    row = session.exec(query).first()
    if row is None:
        after = BalanceAfter(0, 0, 0, None)
    else:
        used_today = row.used_today_cents if row.usage_day == _utc_day(now) else 0
        held = held_now(session, account_id, now) if row.held_cents else 0
        after = BalanceAfter(row.balance_cents, used_today, row.overage_credit_line_cents, row.daily_budget_cents, held)
    return Overview(
        total_credits=int(total_credits),
        earlier_usage=-int(invoiced_debits),
        usage_this_period=-int(uninvoiced_debits),
        remaining_credits=after.balance_cents,
        overage_protection=after.overage_credit_line_cents,
        used_today=after.used_today_cents,
        daily_budget=after.daily_budget_cents,
        available_to_use=after.available_cents,
        held=after.held_cents,
    )


def usage_on_day(session: Session, account_id: int, day: date) -> int:
    """Usage debited during one UTC day, as a positive number (spend management counts it)."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    used = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < start + timedelta(days=1),
            LedgerEntry.source == "usage",
        )
    ).one()
    return -int(used)


def daily_usage(
    session: Session, account_id: int, days: int = 30, now: datetime | None = None
) -> list[tuple[date, int]]:
    """Usage per UTC day for the last `days` days up to today, oldest first, zero days included."""
    today = _utc_day(now or utcnow())
    first = today - timedelta(days=days - 1)
    if session.get_bind().dialect.name == "postgresql":
        day_of = func.date(func.timezone("UTC", LedgerEntry.created_at))
    else:
        day_of = func.date(LedgerEntry.created_at)
    rows = session.exec(
        select(day_of, func.sum(LedgerEntry.amount_cents))
        .where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.created_at >= datetime.combine(first, time(), tzinfo=UTC),
            LedgerEntry.source == "usage",
        )
        .group_by(day_of)
    ).all()
    used = {date.fromisoformat(str(day)[:10]): -int(total) for day, total in rows}
    return [(first + timedelta(days=i), used.get(first + timedelta(days=i), 0)) for i in range(days)]


def runs_out_on(session: Session, account_id: int, now: datetime | None = None) -> date | None:
    """When balance plus overage line is used up at the average daily usage of the last
    RUNWAY_WINDOW_DAYS days; None when there was no usage."""
    now = now or utcnow()
    used = sum(cents for _, cents in daily_usage(session, account_id, RUNWAY_WINDOW_DAYS, now))
    if used <= 0:
        return None
    balance = session.get(CreditBalance, account_id)
    left = balance.balance_cents + balance.overage_credit_line_cents if balance else 0
    return _utc_day(now) + timedelta(days=max(left, 0) * RUNWAY_WINDOW_DAYS // used)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
