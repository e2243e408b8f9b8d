"""Billing periods: calendar months in UTC, like the spend-management days; and a change's
share of a period, prorated by days (plan and seat changes, product sign-ups)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.services.timefmt import format_date


def period_end_after(moment: datetime) -> date:
    """The end (exclusive, a first of the month) of the UTC month `moment` is in."""
    return next_month(month_start(moment))


def billing_period(moment: datetime) -> tuple[date, date]:
    """The calendar month in UTC that `moment` is in: its first day and the next month's."""
    return month_start(moment), period_end_after(moment)


def month_start(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day.replace(day=1)


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


def period_label(start: date, end: date) -> str:
    """ "Nov 1 – Nov 30, 2026" for the days from start up to (not including) end."""
    last = end - timedelta(days=1)
    return f"{start:%b} {start.day} – {format_date(last)}"


@dataclass(frozen=True)
class Proration:
    # The billing period: its first day and the next period's first day (the renewal).
    period_start: date
    period_end: date
    # Days from the day of the change through the period's last day, both included.
    days_left: int
    # Signed: > 0 to charge, < 0 to credit.
    amount_cents: int

    @property
    def days_total(self) -> int:
        return (self.period_end - self.period_start).days


def prorate(old_monthly_cents: int, new_monthly_cents: int, moment: datetime, settled_cent_days: int = 0) -> Proration:
    """The part of the change in the monthly total that falls on the rest of `moment`'s period:
    difference × days left ÷ days in the period, rounded towards zero to whole cents.

    `settled_cent_days` is what the changes already made in the period add up to (difference ×
    days left, summed): the period's running total is rounded, not each change, so changes made
    one at a time settle to the cent what one change to the same end would, and a change and its
    reverse cancel out (adding seats one by one and removing them at once returns exactly what
    was charged)."""
    start, end = billing_period(moment)
    days_total = (end - start).days
    days_left = (end - moment.astimezone(UTC).date()).days
    after = settled_cent_days + (new_monthly_cents - old_monthly_cents) * days_left
    amount = _towards_zero(after, days_total) - _towards_zero(settled_cent_days, days_total)
    return Proration(start, end, days_left, amount)


def _towards_zero(numerator: int, denominator: int) -> int:
    share = abs(numerator) // denominator
    return share if numerator >= 0 else -share
