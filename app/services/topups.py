"""Add Usage Credits (seed 003): a card or crypto payment that becomes ledger credits exactly
once, whether the success is seen in the request, after 3-D Secure, or by Stripe's webhook.
Callers commit. Every Payment row is written before Stripe is called, so a replayed request
finds it and never creates a second charge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from app.config import get_settings
from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.models import Payment, PaymentMethod, utcnow
from app.payments import gateway
from app.services import audit, invoices, ledger, payments
from app.services.customers import account_of, customer_for
from app.services.info import limit_status
from app.services.money import format_usd, parse_dollars
from app.services.overview import billing_settings
from app.services.payment_methods import label, method_of
from app.services.payment_outcome import PaymentOutcome
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.timefmt import format_datetime

MIN_TOPUP_CENTS = 500
MAX_TOPUP_CENTS = 500_000
AMOUNT_MESSAGE = "Enter an amount between $5 and $5000."
DEFAULT_RETURN_PATH = "/billing/add-usage-credits"


@dataclass(frozen=True)
class TopupResult(PaymentOutcome):
    """After 3-D Secure the page calls finish_card_topup."""

    payment_id: str


class PaymentNotStarted(DomainError):
    status_code = 502
    code = "payment_not_started"


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
    method = method_of(session, actor.account_id, payment_method_id)
    if method is None:
        raise ValidationFailed("Select one of your saved payment methods.", field="payment_method")
    payment, replayed = _open_payment(
        session, actor, amount_cents, "card", request_key, method.stripe_payment_method_id
    )
    if replayed:
        return _result(payment, payments.refresh(session, payment))
    secret = payments.charge(
        session,
        payment,
        idempotency_key=f"topup:{payment.public_id}",
        metadata=payments.metadata(payment, "usage_credits"),
    )
    audit.record(
        session,
        actor,
        "payment.credits",
        f"Bought {format_usd(amount_cents)} of usage credits with {label(method)}: {payment.status}",
    )
    return _result(payment, secret)


def finish_card_topup(session: Session, actor: Actor, payment_intent_id: str) -> TopupResult:
    """After the browser's 3-D Secure step: ask Stripe how the intent ended and credit once."""
    require(actor, Permission.BILLING_MANAGE)
    payment = payments.by_intent(session, actor.account_id, payment_intent_id)
    if payment is None:
        raise NotFound("No such payment.")
    return _result(payment, payments.refresh(session, payment))


CRYPTO_ON_LOCALSTRIPE = (
    "Cryptocurrency is not available here: localstripe, which this console uses instead of Stripe in "
    "development, cannot take crypto payments."
)
CRYPTO_NOT_ENABLED = "Cryptocurrency is not available: this console's Stripe account cannot take crypto payments."
CRYPTO_NOT_STARTED = (
    "Stripe could not start the cryptocurrency payment. Nothing was charged; try again in a few minutes."
)


def crypto_unavailable(session: Session, actor: Actor) -> str:
    """Why Add Usage Credits cannot offer cryptocurrency ("" when it can): only a Stripe account
    whose crypto_payments capability is active takes it."""
    require(actor, Permission.BILLING_VIEW)
    if gateway.crypto_payments_enabled():
        return ""
    return CRYPTO_ON_LOCALSTRIPE if get_settings().uses_localstripe else CRYPTO_NOT_ENABLED


def start_crypto_topup(
    session: Session, actor: Actor, *, amount_text: str, request_key: str, return_path: str = DEFAULT_RETURN_PATH
) -> CryptoCheckout:
    """Open a Stripe Checkout page limited to crypto. A replayed request gets the same page back,
    because Stripe answers a repeated idempotency key with the session it made the first time.
    Refused, before anything is written, where the Stripe account cannot take crypto."""
    amount_cents = _checked_amount(session, actor, amount_text)
    if reason := crypto_unavailable(session, actor):
        raise ValidationFailed(reason, field="payment_method")
    payment, _ = _open_payment(session, actor, amount_cents, "crypto", request_key, "")
    if payment.status not in ("pending", "processing"):
        raise Conflict("This payment has already ended; start a new one.")
    base = get_settings().public_url + return_path
    try:
        checkout = gateway.create_crypto_checkout_session(
            customer_id=customer_for(session, actor.account_id),
            amount_cents=amount_cents,
            success_url=f"{base}?crypto=success",
            cancel_url=f"{base}?crypto=canceled",
            metadata=payments.metadata(payment, "usage_credits"),
            idempotency_key=f"crypto:{payment.public_id}",
        )
    except gateway.PaymentProviderError as exc:
        # Opening a Checkout page moves no money: say so, not that the payment may have gone through.
        raise PaymentNotStarted(CRYPTO_NOT_STARTED) from exc
    payment.stripe_checkout_session_id = checkout.id
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
    audit.record(session, actor, "payment.credits", f"Started a {format_usd(amount_cents)} cryptocurrency payment")
    return CryptoCheckout(payment_id=payment.public_id, url=checkout.url)


@payments.on_settled("card", "crypto")
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    """A succeeded purchase becomes credits, once: keyed by the PaymentIntent (card) or the
    Checkout Session (crypto)."""
    if payment.status != "succeeded":
        return
    if payment.method == "crypto":
        cs_id = payment.stripe_checkout_session_id
        credit(
            session, payment, f"Stripe Checkout Session {cs_id} via Add Usage Credits (crypto)", f"stripe:cs:{cs_id}"
        )
    else:
        pi_id = payment.stripe_payment_intent_id
        credit(session, payment, f"Stripe Payment Intent {pi_id} via Add Usage Credits", f"stripe:pi:{pi_id}")


def credit(session: Session, payment: Payment, description: str, key: str) -> None:
    """The succeeded payment's amount onto the ledger (source "purchase", or "auto_recharge" for
    a recharge), once by `key`, with its paid receipt."""
    entry = ledger.credit(
        session,
        account_id=payment.account_id,
        amount_cents=payment.amount_cents,
        source="auto_recharge" if payment.method == "auto_recharge" else "purchase",
        description=description,
        idempotency_key=key,
    )
    payment.ledger_entry_id = entry.id
    session.add(payment)
    session.flush()
    invoices.issue_receipt(session, payment)


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
    idempotency_key = f"{method}:{actor.account_id}:{request_key}"
    if payments.by_key(session, actor.account_id, idempotency_key) is None:
        check_monthly_credits(session, actor.account_id, amount_cents, field="amount")
    return payments.open_payment(
        session,
        account_id=actor.account_id,
        amount_cents=amount_cents,
        method=method,
        idempotency_key=idempotency_key,
        payment_method_id=payment_method_id,
        created_by_user_id=actor.user_id,
    )


def check_monthly_credits(session: Session, account_id: int, amount_cents: int, *, field: str | None = None) -> None:
    """Refuse buying credits past the plan's usage credits a month: the credits bought this
    calendar month (UTC), as the Info page shows them, plus this amount. A replayed request is
    not asked again (it charges nothing new)."""
    account = account_of(session, account_id)
    credits = limit_status(session, account, "monthly_credits_cents")
    if credits.allows(amount_cents):
        return
    left = max((credits.limit or 0) - credits.used, 0)
    raise ValidationFailed(
        f"Account limit reached: your {get_plan(account.plan_code).name} plan includes {credits.limit_text} of "
        f"usage credits a month and {credits.used_text} were bought this month (UTC), so at most "
        f"{format_usd(left)} more can be added until the 1st. Upgrade your plan to add more.",
        field=field,
    )


def _result(payment: Payment, client_secret: str = "") -> TopupResult:
    return TopupResult(payment_id=payment.public_id, **payments.outcome(payment, client_secret))


@dataclass(frozen=True)
class RecentPayment:
    when: str
    amount: str
    how: str
    status: str
    reason: str


def current_balance(session: Session, actor: Actor) -> str:
    """The balance the page adds to, so the payer sees what they have before and after, and what
    open holds reserve of it (not available to use)."""
    require(actor, Permission.BILLING_VIEW)
    balance = format_usd(ledger.balance_of(session, actor.account_id))
    held = ledger.held_now(session, actor.account_id, utcnow())
    return f"{balance} ({format_usd(held)} held for calls in progress)" if held else balance


def recent_payments(session: Session, actor: Actor, timezone: str, limit: int = 5) -> list[RecentPayment]:
    """The latest credit purchases and recharges, so a payment that settles later (SEPA, crypto)
    shows how it ended and, when it failed, why."""
    require(actor, Permission.BILLING_VIEW)
    recent = payments.latest(session, actor.account_id, ("card", "crypto", "auto_recharge"), limit)
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
            status=payments.STATUS_LABELS.get(p.status, p.status.title()),
            reason=p.failure_message if p.status == "failed" else "",
        )
        for p in recent
    ]
