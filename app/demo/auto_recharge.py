"""Demo data for auto recharge: on, adding $100 when the balance falls to $20 (more than the
threshold plus the Pro plan's $50 overage line, as the form requires), if the demo account
has a default card (seeded just before by payment_methods; without Stripe it has none and auto
recharge stays off). The demo balance is far above $20, so nothing is charged at seed time."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.models import Account
from app.services import payment_methods, recharge
from app.services.overview import billing_settings

THRESHOLD_CENTS = 2_000
AMOUNT_CENTS = 10_000


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    settings = billing_settings(session, account.id)
    if settings.invoice_priced or payment_methods.default_method(session, account.id) is None:
        return
    settings.auto_recharge_enabled = True
    settings.auto_recharge_threshold_cents = THRESHOLD_CENTS
    settings.auto_recharge_amount_cents = AMOUNT_CENTS
    session.add(settings)
    recharge.put_in_force(session, settings)
