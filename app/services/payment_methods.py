"""Saved payment methods: card capture through a SetupIntent, and the account's list of cards."""

from __future__ import annotations

from sqlmodel import Session, select

from app.models import Account, PaymentMethod
from app.payments import gateway
from app.services.errors import ValidationFailed
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require

INVOICE_PRICED_MESSAGE = "Your account pays by invoice, so no card can be added."


def _require_card_account(session: Session, actor: Actor) -> None:
    require(actor, Permission.BILLING_MANAGE)
    if billing_settings(session, actor.account_id).invoice_priced:
        raise ValidationFailed(INVOICE_PRICED_MESSAGE)


def start_card_setup(session: Session, actor: Actor) -> str:
    """A SetupIntent's client secret for the Card Element (off-session use)."""
    _require_card_account(session, actor)
    customer_id = gateway.ensure_customer(session, session.get(Account, actor.account_id))
    return gateway.create_setup_intent(customer_id)


def save_card(session: Session, actor: Actor, payment_method_id: str) -> PaymentMethod:
    """Attach the card Stripe.js just confirmed; the first card becomes the default."""
    _require_card_account(session, actor)
    if not payment_method_id.startswith("pm_"):
        raise ValidationFailed("Stripe did not return a card.")
    customer_id = gateway.ensure_customer(session, session.get(Account, actor.account_id))
    gateway.attach_payment_method(customer_id, payment_method_id)
    has_default = session.exec(
        select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id, PaymentMethod.is_default == True)  # noqa: E712
    ).first()
    if has_default is None:
        gateway.set_default_payment_method(customer_id, payment_method_id)
    rows = gateway.sync_payment_methods(session, actor.account_id)
    return next(row for row in rows if row.stripe_payment_method_id == payment_method_id)


def saved_methods(session: Session, actor: Actor) -> list[PaymentMethod]:
    """The account's saved methods, the default first."""
    require(actor, Permission.BILLING_VIEW)
    return list(
        session.exec(
            select(PaymentMethod)
            .where(PaymentMethod.account_id == actor.account_id)
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at)
        )
    )


def describe(method: PaymentMethod) -> str:
    """"Visa •••• 4242 (default)"."""
    brand = "SEPA Debit" if method.kind == "sepa_debit" else (method.brand or "Card").title()
    label = f"{brand} •••• {method.last4}"
    return f"{label} (default)" if method.is_default else label
