"""Dates shown to people are in the account's timezone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_datetime(moment: datetime, timezone: str) -> str:
    """ "2026-11-22 05:10 CET"."""
    local = moment.astimezone(zone(timezone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def format_date(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def format_day(moment: datetime, timezone: str) -> str:
    """ "Nov 22, 2026": the day `moment` falls on in the timezone."""
    return format_date(moment.astimezone(zone(timezone)).date())
