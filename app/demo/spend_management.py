"""Demo data for spend_management (filled in by its capability)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.models import Account


def seed(session: Session, account: Account, now: datetime) -> None:
    return None
