"""Billing periods: calendar months in UTC, like the spend-management days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.services.timefmt import format_date


def period_end_after(moment: datetime) -> date:
    """The end (exclusive, a first of the month) of the UTC month `moment` is in."""
    return next_month(month_start(moment))


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
