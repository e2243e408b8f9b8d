"""Demo data for plans and seats: the demo account is on Pro (5 seats included) with 6 seats
bought, in the current billing period, so the Plans page shows $29.00 × 6 seats and room for
three more users. Nothing is charged here: the other demo parts own the account's payments and
invoices."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlmodel import Session

from app.models import Account
from app.services.subscription import billing_period

SEATS = 6


def seed(session: Session, account: Account, now: datetime) -> None:
    start, end = billing_period(now)
    account.seats_purchased = SEATS
    account.plan_status = "active"
    account.plan_period_start = datetime.combine(start, time(), tzinfo=UTC)
    account.plan_renews_at = datetime.combine(end, time(), tzinfo=UTC)
    session.add(account)
    session.flush()
