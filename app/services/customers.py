"""The account's Stripe customer: created on first use, its id kept on BillingSettings. The one
place that writes our row for it; the gateway only talks to Stripe."""

from __future__ import annotations

from sqlmodel import Session

from app.errors import NotFound
from app.models import Account
from app.payments import gateway
from app.services.overview import billing_settings


def ensure_customer(session: Session, account: Account) -> str:
    """The account's Stripe customer id, creating the customer on first use."""
    settings_row = billing_settings(session, account_id_of(account))
    if settings_row.stripe_customer_id:
        return settings_row.stripe_customer_id
    customer_id = gateway.create_customer(
        name=account.name,
        metadata={"account_id": str(settings_row.account_id), "account": account.public_id},
        idempotency_key=f"customer:{account.public_id}",
    )
    settings_row.stripe_customer_id = customer_id
    session.add(settings_row)
    session.flush()
    return customer_id


def customer_for(session: Session, account_id: int) -> str:
    """ensure_customer for an account known by its id."""
    return ensure_customer(session, account_of(session, account_id))


def account_of(session: Session, account_id: int) -> Account:
    """The account a payment, invoice or change belongs to (it always exists: accounts are never
    deleted while they have billing rows)."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


def account_id_of(account: Account) -> int:
    """A saved account's id (typed as int)."""
    if account.id is None:
        raise NotFound("The account is not saved yet.")
    return account.id
