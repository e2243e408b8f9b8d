"""Demo data for Discover Products: the demo account also uses Smart Alerts on its free plan."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.models import Account, AccountProduct


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    session.add(AccountProduct(account_id=account.id, product_code="alerts", plan_code="free", started_at=now))
