"""Demo data for metering: the demo account's API key (DEMO_API_KEY, printed by the run command)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.config import ConfigError, get_settings
from app.models import Account
from app.services import api_keys


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    demo_key = get_settings().demo_api_key
    if not api_keys.well_formed(demo_key):
        raise ConfigError("DEMO_API_KEY must be 'ld_' followed by 20 to 120 letters, digits, '_' or '-'.")
    api_keys.ensure_demo_key(session, account.id, demo_key)
