"""Charging a saved card while its owner is on the page: one PaymentIntent for a Payment row that
was written first, so a replayed request finds the row and never charges twice."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from app.models import Payment, PaymentMethod
from app.payments import gateway
from app.services.customers import customer_for


@dataclass(frozen=True)
class Charge:
    """The intent's status (succeeded | requires_action | processing | failed | ...), the reason
    when it failed, and the client secret Stripe.js needs for 3-D Secure."""

    status: str
    failure_message: str = ""
    client_secret: str = ""


def method_type(session: Session, stripe_payment_method_id: str) -> str:
    """ "card" or "sepa_debit": the saved method's type, which its PaymentIntent must name."""
    kind = session.exec(
        select(PaymentMethod.kind).where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
    ).first()
    return kind or "card"


def charge_saved_card(session: Session, payment: Payment, *, idempotency_key: str, metadata: dict[str, str]) -> Charge:
    """Charge `payment.amount_cents` to `payment.stripe_payment_method_id` and record the intent
    id on the payment. A decline or an unreachable Stripe comes back as "failed": the caller keeps
    the payment as failed (not rolled back), so should Stripe have charged after all, its webhook
    finds the payment through the intent's metadata."""
    customer_id = customer_for(session, payment.account_id)
    try:
        intent = gateway.create_payment_intent(
            customer_id=customer_id,
            payment_method_id=payment.stripe_payment_method_id,
            amount_cents=payment.amount_cents,
            idempotency_key=idempotency_key,
            off_session=False,
            metadata=metadata,
            method_type=method_type(session, payment.stripe_payment_method_id),
        )
    except gateway.CardDeclined as exc:
        payment.stripe_payment_intent_id = exc.payment_intent_id or None
        return Charge("failed", exc.message)
    except gateway.PaymentProviderError as exc:
        return Charge("failed", exc.message)
    payment.stripe_payment_intent_id = intent.id
    return Charge(intent.status, intent.failure_message, intent.client_secret)
