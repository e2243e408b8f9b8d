"""Demo data for payment_methods: a Visa test card on file as the default. Needs Stripe (the run
command starts localstripe before seeding); without it the demo account simply has no card."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from app.models import Account
from app.payments import gateway
from app.services.customers import ensure_customer
from app.services.payment_methods import sync_payment_methods

log = logging.getLogger("ledgerdesk.seed")

# Stripe's test payment method for 4242 4242 4242 4242; localstripe knows it too.
DEMO_CARD = "pm_card_visa"


def seed(session: Session, account: Account, now: datetime) -> None:
    try:
        assert account.id is not None  # seeded accounts are saved
        if sync_payment_methods(session, account.id):
            return
        customer_id = ensure_customer(session, account)
        card = gateway.attach_payment_method(customer_id, DEMO_CARD)
        gateway.set_billing_name(card.id, account.name)
        gateway.set_default_payment_method(customer_id, card.id)
        sync_payment_methods(session, account.id)
    except gateway.PaymentProviderError as exc:
        log.warning("Stripe is not reachable, so the demo account has no saved card: %s", exc.message)
