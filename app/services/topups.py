"""Add Usage Credits (seed 003): a card or crypto payment that becomes ledger credits exactly
once, whether the success is seen in the request, after 3-D Secure, or by Stripe's webhook.
Callers commit. Every Payment row is written before Stripe is called, so a replayed request
finds it and never creates a second charge."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.config import get_settings
from app.errors import Conflict, NotFound, ValidationFailed
from app.models import Payment, PaymentMethod, utcnow
from app.payments import gateway
from app.services import audit, invoices, ledger
from app.services.card_charges import charge_saved_card
from app.services.customers import customer_for
from app.services.money import format_usd, parse_dollars
from app.services.overview import billing_settings
from app.services.payment_methods import label
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_datetime

MIN_TOPUP_CENTS = 500
MAX_TOPUP_CENTS = 500_000
AMOUNT_MESSAGE = "Enter an amount between $5 and $5000."
DEFAULT_RETURN_PATH = "/billing/add-usage-credits"


@dataclass(frozen=True)
class TopupResult:
    """status: succeeded | requires_action | processing | failed. With requires_action the page
    passes client_secret to Stripe.js confirmCardPayment, then calls finish_card_topup."""

    status: str
    payment_id: str
    amount_cents: int
    payment_intent_id: str = ""
    client_secret: str = ""
    message: str = ""


@dataclass(frozen=True)
class CryptoCheckout:
    """Send the browser to `url` (Stripe's hosted page); the webhook credits when it is paid."""

    payment_id: str
    url: str


def start_card_topup(
    session: Session, actor: Actor, *, amount_text: str, payment_method_id: str, request_key: str
) -> TopupResult:
    """Charge one of the account's saved cards and credit the balance when it succeeds."""
    amount_cents = _checked_amount(session, actor, amount_text)
    method = session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == actor.account_id,
            PaymentMethod.stripe_payment_method_id == payment_method_id,
        )
    ).first()
    if method is None:
        raise ValidationFailed("Select one of your saved payment methods.", field="payment_method")
    payment, replayed = _open_payment(
        session, actor, amount_cents, "card", request_key, method.stripe_payment_method_id
    )
    if replayed:
        return _refreshed(session, payment)
    charge = charge_saved_card(
        session, payment, idempotency_key=f"topup:{payment.public_id}", metadata=_metadata(payment)
    )
    apply_intent(session, payment, charge.status, charge.failure_message)
    audit.record(
        session,
        actor,
        "payment.credits",
        f"Bought {format_usd(amount_cents)} of usage credits with {label(method)}: {payment.status}",
    )
    return _result(payment, charge.client_secret)


def finish_card_topup(session: Session, actor: Actor, payment_intent_id: str) -> TopupResult:
    """After the browser's 3-D Secure step: ask Stripe how the intent ended and credit once."""
    require(actor, Permission.BILLING_MANAGE)
    payment = session.exec(
        select(Payment).where(
            Payment.account_id == actor.account_id, Payment.stripe_payment_intent_id == payment_intent_id
        )
    ).first()
    if payment is None:
        raise NotFound("No such payment.")
    return _refreshed(session, payment)


def start_crypto_topup(
    session: Session, actor: Actor, *, amount_text: str, request_key: str, return_path: str = DEFAULT_RETURN_PATH
) -> CryptoCheckout:
    """Open a Stripe Checkout page limited to crypto. A replayed request gets the same page back,
    because Stripe answers a repeated idempotency key with the session it made the first time."""
    amount_cents = _checked_amount(session, actor, amount_text)
    payment, _ = _open_payment(session, actor, amount_cents, "crypto", request_key, "")
    if payment.status not in ("pending", "processing"):
        raise Conflict("This payment has already ended; start a new one.")
    base = get_settings().public_url + return_path
    checkout = gateway.create_crypto_checkout_session(
        customer_id=customer_for(session, actor.account_id),
        amount_cents=amount_cents,
        success_url=f"{base}?crypto=success",
        cancel_url=f"{base}?crypto=canceled",
        metadata=_metadata(payment),
        idempotency_key=f"crypto:{payment.public_id}",
    )
    payment.stripe_checkout_session_id = checkout.id
    _touch(session, payment)
    audit.record(session, actor, "payment.credits", f"Started a {format_usd(amount_cents)} cryptocurrency payment")
    return CryptoCheckout(payment_id=payment.public_id, url=checkout.url)


def apply_intent(session: Session, payment: Payment, status: str, failure_message: str = "") -> None:
    """Move a card or recharge payment to the intent's status; credit once when it succeeded.
    A succeeded payment never goes back (events may arrive out of order). A recharge that ended
    gets its bookkeeping (recharge.settle), whether the job or the webhook saw it first."""
    if payment.status == "succeeded":
        return
    if status == "succeeded":
        source = "auto_recharge" if payment.method == "auto_recharge" else "purchase"
        via = "Auto Recharge call." if source == "auto_recharge" else "Add Usage Credits"
        pi_id = payment.stripe_payment_intent_id
        _credit(session, payment, source, f"Stripe Payment Intent {pi_id} via {via}", f"stripe:pi:{pi_id}")
    elif status in ("requires_action", "processing"):
        payment.status = status
        _touch(session, payment)
    else:
        mark_failed(session, payment, failure_message or "The payment did not go through.")
    if payment.method == "auto_recharge" and payment.status in ("succeeded", "failed"):
        from app.services import recharge  # imported here: recharge builds on this module

        recharge.settle(session, payment)


def apply_checkout_paid(session: Session, payment: Payment) -> None:
    """A paid crypto Checkout Session: credit once, keyed by the session id."""
    if payment.status != "succeeded":
        cs_id = payment.stripe_checkout_session_id
        _credit(
            session,
            payment,
            "purchase",
            f"Stripe Checkout Session {cs_id} via Add Usage Credits (crypto)",
            f"stripe:cs:{cs_id}",
        )


def _checked_amount(session: Session, actor: Actor, amount_text: str) -> int:
    require(actor, Permission.BILLING_MANAGE)
    amount_cents = parse_dollars(amount_text)
    if not MIN_TOPUP_CENTS <= amount_cents <= MAX_TOPUP_CENTS:
        raise ValidationFailed(AMOUNT_MESSAGE, field="amount")
    if billing_settings(session, actor.account_id).invoice_priced:
        raise Conflict("This account is invoice-priced: usage is billed on your invoice.")
    return amount_cents


def _open_payment(
    session: Session, actor: Actor, amount_cents: int, method: str, request_key: str, payment_method_id: str
) -> tuple[Payment, bool]:
    """The Payment for this request, and whether it already existed (a replayed request)."""
    if not request_key:
        raise ValidationFailed("A request key is required.")
    key = f"{method}:{actor.account_id}:{request_key}"
    existing = session.exec(select(Payment).where(Payment.idempotency_key == key)).first()
    if existing is not None:
        return existing, True
    payment = Payment(
        account_id=actor.account_id,
        amount_cents=amount_cents,
        method=method,
        stripe_payment_method_id=payment_method_id,
        idempotency_key=key,
        created_by_user_id=actor.user_id,
    )
    try:
        with session.begin_nested():
            session.add(payment)
    except IntegrityError:
        # The same request, committed meanwhile by a concurrent transaction.
        return session.exec(select(Payment).where(Payment.idempotency_key == key)).one(), True
    return payment, False


def _refreshed(session: Session, payment: Payment) -> TopupResult:
    """An unfinished card payment brought up to date from Stripe (with the client secret the
    page needs while 3-D Secure is pending); a finished one as recorded."""
    if payment.status in ("succeeded", "failed") or not payment.stripe_payment_intent_id:
        return _result(payment)
    intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
    apply_intent(session, payment, intent.status, intent.failure_message)
    return _result(payment, intent.client_secret)


def _metadata(payment: Payment) -> dict[str, str]:
    return {"payment_id": payment.public_id, "account_id": str(payment.account_id), "purpose": "usage_credits"}


def _credit(session: Session, payment: Payment, source: str, description: str, key: str) -> None:
    entry = ledger.credit(
        session,
        account_id=payment.account_id,
        amount_cents=payment.amount_cents,
        source=source,
        description=description,
        idempotency_key=key,
    )
    payment.status = "succeeded"
    payment.failure_message = ""
    payment.ledger_entry_id = entry.id
    _touch(session, payment)
    invoices.issue_receipt(session, payment)


def mark_failed(session: Session, payment: Payment, message: str) -> None:
    payment.status = "failed"
    payment.failure_message = message[:500]
    _touch(session, payment)


def _touch(session: Session, payment: Payment) -> None:
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()


def _result(payment: Payment, client_secret: str = "") -> TopupResult:
    return TopupResult(
        status=payment.status,
        payment_id=payment.public_id,
        amount_cents=payment.amount_cents,
        payment_intent_id=payment.stripe_payment_intent_id or "",
        client_secret=client_secret if payment.status == "requires_action" else "",
        message=payment.failure_message,
    )


@dataclass(frozen=True)
class RecentPayment:
    when: str
    amount: str
    how: str
    status: str
    reason: str


STATUS_LABELS = {
    "pending": "Pending",
    "requires_action": "Waiting for authentication",
    "processing": "Processing",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
}


def recent_payments(session: Session, actor: Actor, timezone: str, limit: int = 5) -> list[RecentPayment]:
    """The latest credit purchases and recharges, so a payment that settles later (SEPA, crypto)
    shows how it ended and, when it failed, why."""
    require(actor, Permission.BILLING_VIEW)
    payments = session.exec(
        select(Payment)
        .where(Payment.account_id == actor.account_id, Payment.method.in_(("card", "crypto", "auto_recharge")))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(limit)
    ).all()
    methods = {
        m.stripe_payment_method_id: label(m)
        for m in session.exec(select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id))
    }
    return [
        RecentPayment(
            when=format_datetime(p.created_at, timezone),
            amount=format_usd(p.amount_cents),
            how="Cryptocurrency"
            if p.method == "crypto"
            else methods.get(p.stripe_payment_method_id, "A removed method")
            + (" (auto recharge)" if p.method == "auto_recharge" else ""),
            status=STATUS_LABELS.get(p.status, p.status.title()),
            reason=p.failure_message if p.status == "failed" else "",
        )
        for p in payments
    ]
