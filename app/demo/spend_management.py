"""Demo data for spend management: turned on with a $500 daily budget and a $300 notification
threshold, well above the demo's daily usage (a few dollars), and no webhook URL."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.models import Account
from app.services.overview import billing_settings
from app.services.spend import put_in_force

DAILY_BUDGET_CENTS = 50_000
NOTIFY_THRESHOLD_CENTS = 30_000


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    settings = billing_settings(session, account.id)
    settings.spend_management_enabled = True
    settings.daily_budget_cents = DAILY_BUDGET_CENTS
    settings.daily_notify_threshold_cents = NOTIFY_THRESHOLD_CENTS
    session.add(settings)
    put_in_force(session, settings)
