"""Demo data for invoices: an invoice address with a PO number, a billing email, two tax
registrations, a paid receipt for each demo top-up, and last month's invoice (the Pro plan's
renewal and the month's usage), open. The registrations go through Stripe, whose test mode (and
localstripe) verifies DE136695976 and not PL1111111111 (numbers holding 111111111 stay
unverified). Without Stripe, the address and registrations are kept here only, with those
statuses. Seeding twice changes nothing: invoices are keyed, registrations looked up first."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session

from app.demo.usage_credits import PURCHASES
from app.models import Account, TaxRegistration
from app.payments import gateway
from app.services import billing_details, invoices, tax
from app.services.overview import billing_settings

log = logging.getLogger("ledgerdesk.seed")

ADDRESS = {
    "company_name": "Northwind Analytics GmbH",
    "address1": "Friedrichstraße 68",
    "address2": "3rd floor",
    "city": "Berlin",
    "postal_code": "10117",
    "region": "Berlin",
    "country": "DE",
    "po_number": "PO-2026-0042",
}
BILLING_EMAIL = "billing@northwind.example"
# (country, type, number, the status Stripe's test mode gives it)
REGISTRATIONS = (("DE", "eu_vat", "DE136695976", "verified"), ("PL", "eu_vat", "PL1111111111", "unverified"))


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    settings = billing_settings(session, account.id)
    billing_details.store_invoice_address(settings, billing_details.check_address(ADDRESS))
    settings.billing_email = BILLING_EMAIL
    session.add(settings)
    session.flush()
    try:
        billing_details.push_address_to_stripe(session, account)
    except gateway.PaymentProviderError as exc:
        log.warning("Stripe is not reachable, so the demo address is not on the Stripe customer: %s", exc.message)
    for country, tax_type, number, status in REGISTRATIONS:
        _register(session, account, country, tax_type, number, status)
    _invoices(session, account, now)
    invoices.schedule_period_close(session, now)


def _register(session: Session, account: Account, country: str, tax_type: str, number: str, status: str) -> None:
    assert account.id is not None  # seeded accounts are saved
    if tax.find(session, account.id, tax_type, number) is not None:
        return
    try:
        tax.register(session, account.id, country=country, tax_type=tax_type, value=number)
    except gateway.PaymentProviderError:
        session.add(TaxRegistration(account_id=account.id, country=country, type=tax_type, value=number, status=status))
        session.flush()


def _invoices(session: Session, account: Account, now: datetime) -> None:
    """In the order they were issued, so that numbers follow dates."""
    assert account.id is not None  # seeded accounts are saved
    month_start = datetime.combine(now.astimezone(UTC).date().replace(day=1), time(), tzinfo=UTC)
    events = [(now - timedelta(days=days_ago), number, cents) for number, (days_ago, cents) in enumerate(PURCHASES, 1)]
    events.append((month_start, 0, 0))
    for at, number, cents in sorted(events):
        if number == 0:
            invoices.close_period(session, account.id, month_start.date(), now=month_start)
            continue
        invoices.issue_invoice(
            session,
            account.id,
            source="purchase",
            lines=[invoices.LineItem("Usage credits", cents)],
            idempotency_key=f"demo:{account.id}:receipt:{number}",
            status="paid",
            now=at,
        )
