"""The account's Stripe customer: created on first use, its id kept on the Account (a global table,
so Stripe's webhooks find the account by the customer their objects name). The one place that
writes our row for it; the gateway only talks to Stripe."""

from __future__ import annotations

from sqlmodel import Session, select

from app.errors import NotFound
from app.models import Account
from app.payments import gateway


def ensure_customer(session: Session, account: Account) -> str:
    """The account's Stripe customer id, creating the customer on first use."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer_id = gateway.create_customer(
        name=account.name,
        metadata={"account_id": str(account_id_of(account)), "account": account.public_id},
        idempotency_key=f"customer:{account.public_id}",
    )
    account.stripe_customer_id = customer_id
    session.add(account)
    session.flush()
    return customer_id


def stripe_customer_id(session: Session, account_id: int) -> str:
    """The account's Stripe customer id; "" until it has one."""
    return account_of(session, account_id).stripe_customer_id


def account_with_customer(session: Session, customer_id: str) -> int | None:
    """The id of the account whose Stripe customer this is; None for a customer not ours."""
    if not customer_id:
        return None
    return session.exec(select(Account.id).where(Account.stripe_customer_id == customer_id)).first()


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
