"""The life of a Payment row, the same for every kind of payment: opened before Stripe is called
(so a replayed request finds it and never charges twice), charged through the gateway, brought
up to date after 3-D Secure or from Stripe, cancelled while waiting, and settled.

`set_status` is the one place a payment's status changes until it succeeds. A status never goes
back: a succeeded payment stays succeeded, an ended one never waits again (Stripe's events may
arrive out of order, and the request, the 3-D Secure step, the job and the webhook may all
report the same outcome). After success only refunds and disputes move it on (app.services.refunds).
`mismatch` is what Stripe's events are checked against before they count. When a payment ends (succeeded, failed or canceled)
the handler its kind registered with `on_settled` runs once for that outcome: the usage-credit
purchases (topups), the auto recharges (recharge), the invoice payments and renewals (invoices)
and the plan changes (subscription) each say there what a settled payment means for them. Modules that
settle payments (the webhook, the jobs) import those four so that every handler is registered.

Callers commit, with one exception: `charge` and `charge_off_session` (the auto-recharge and
renewal jobs) commit the caller's work so far (the opened payment and what it pays for) before
they call Stripe. Whatever then
becomes of the rest of the caller's transaction, the payment exists: Stripe's webhook finds it
through the intent's metadata, and a replayed request finds the intent at Stripe (`refresh`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import metrics
from app.models import Invoice, Payment, PaymentMethod, PlanChange, utcnow
from app.payments import gateway
from app.services import live
from app.services.customers import customer_for, stripe_customer_id

log = logging.getLogger("ledgerdesk.payments")

# pending | requires_action | processing: still under way.
WAITING = ("requires_action", "processing")
ENDED = ("succeeded", "failed", "canceled")
# A succeeded payment that Stripe later refunded or that the payer disputed.
AFTER_SUCCESS = ("partially_refunded", "refunded", "disputed", "dispute_won", "dispute_lost")
SUCCEEDED = ("succeeded", *AFTER_SUCCESS)
DECLINED_MESSAGE = "The payment did not go through."
NOT_REACHED_MESSAGE = "The payment did not reach Stripe."
AUTHENTICATION_MESSAGE = "Your bank asked to authenticate the charge, which cannot be done automatically."
# Longer than any call to Stripe can take (the gateway's timeouts and retries): a pending payment
# that Stripe has no intent for after this never reached Stripe.
UNREACHED_AFTER = timedelta(minutes=5)

STATUS_LABELS = {
    "pending": "Pending",
    "requires_action": "Waiting for authentication",
    "processing": "Processing",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
    "partially_refunded": "Partially refunded",
    "refunded": "Refunded",
    "disputed": "Disputed",
    "dispute_won": "Dispute won",
    "dispute_lost": "Dispute lost",
}

Settle = Callable[[Session, Payment, datetime], None]
Lock = Callable[[Session, Payment], None]


@dataclass(frozen=True)
class _Kind:
    settle: Settle
    lock: Lock | None


_KINDS: dict[str, _Kind] = {}


def on_settled(*kinds: str, lock: Lock | None = None) -> Callable[[Settle], Settle]:
    """Register what an ended payment of these kinds (Payment.method) means: the handler gets the
    payment with its final status. `lock`, when given, runs before the status is read, so that a
    domain can serialize its own bookkeeping (a plan change locks its account)."""

    def register(settle: Settle) -> Settle:
        for kind in kinds:
            _KINDS[kind] = _Kind(settle, lock)
        return settle

    return register


def open_payment(
    session: Session,
    *,
    account_id: int,
    amount_cents: int,
    method: str,
    idempotency_key: str,
    payment_method_id: str = "",
    created_by_user_id: int | None = None,
    invoice_id: int | None = None,
    plan_change_id: int | None = None,
) -> tuple[Payment, bool]:
    """The Payment for this idempotency key, and whether it already existed (a replay)."""
    existing = by_key(session, account_id, idempotency_key)
    if existing is not None:
        return existing, True
    payment = Payment(
        account_id=account_id,
        amount_cents=amount_cents,
        method=method,
        stripe_payment_method_id=payment_method_id,
        idempotency_key=idempotency_key,
        created_by_user_id=created_by_user_id,
        invoice_id=invoice_id,
        plan_change_id=plan_change_id,
    )
    try:
        with session.begin_nested():
            session.add(payment)
    except IntegrityError:
        # The same request, committed meanwhile by a concurrent transaction.
        return by_key_or_fail(session, account_id, idempotency_key), True
    return payment, False


def by_key(session: Session, account_id: int, idempotency_key: str) -> Payment | None:
    return session.exec(_by_key(account_id, idempotency_key)).first()


def by_key_or_fail(session: Session, account_id: int, idempotency_key: str) -> Payment:
    return session.exec(_by_key(account_id, idempotency_key)).one()


def _by_key(account_id: int, idempotency_key: str):
    return select(Payment).where(Payment.account_id == account_id, Payment.idempotency_key == idempotency_key)


def by_intent(session: Session, account_id: int, payment_intent_id: str, method: str | None = None) -> Payment | None:
    """The account's payment for a PaymentIntent (after the browser's 3-D Secure step)."""
    query = select(Payment).where(
        Payment.account_id == account_id, Payment.stripe_payment_intent_id == payment_intent_id
    )
    if method is not None:
        query = query.where(Payment.method == method)
    return session.exec(query).first()


def set_status(
    session: Session, payment: Payment, status: str, message: str = "", *, now: datetime | None = None
) -> None:
    """Move the payment to a Stripe status (succeeded | requires_action | processing | failed |
    canceled | anything else, which counts as failed). A succeeded payment never goes back, nor
    does an ended one wait again; an ended payment's kind settles it once for that outcome.
    Whoever turns a failed or canceled payment into a succeeded one has asked Stripe first."""
    kind = _KINDS.get(payment.method)
    if kind is not None and kind.lock is not None:
        kind.lock(session, payment)
    if payment.status in SUCCEEDED:
        return
    if status not in ("succeeded", "canceled", *WAITING):
        status = "failed"
    before = payment.status
    if before in ENDED and status in WAITING:
        return
    payment.status = status
    payment.failure_message = (message or DECLINED_MESSAGE)[:500] if status in ("failed", "canceled") else ""
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
    live.mark(session, payment.account_id)
    if status in ENDED and before != status:
        if kind is None:
            raise LookupError(f"no settle handler for payments of kind {payment.method!r}")
        kind.settle(session, payment, now or utcnow())


def mismatch(
    session: Session, payment: Payment, *, intent_id: str, amount_cents: int | None, currency: str, customer: str | None
) -> str:
    """Why a Stripe object does not describe what we asked Stripe for with this payment ("" when
    it does): the same PaymentIntent (once we know it), amount, currency and customer. Leave
    `amount_cents` None where Stripe's object may be for less, and `customer` None where it names
    none (a dispute)."""
    if intent_id and payment.stripe_payment_intent_id and intent_id != payment.stripe_payment_intent_id:
        return f"PaymentIntent {intent_id} is not the payment's {payment.stripe_payment_intent_id}"
    if amount_cents is not None and amount_cents != payment.amount_cents:
        return f"amount {amount_cents} is not the payment's {payment.amount_cents}"
    if currency != gateway.CURRENCY:
        return f"currency {currency!r} is not {gateway.CURRENCY!r}"
    expected = stripe_customer_id(session, payment.account_id)
    if customer is not None and (not expected or customer != expected):
        return f"customer {customer!r} is not the account's {expected!r}"
    return ""


def intent_mismatch(session: Session, payment: Payment, intent: gateway.Intent) -> str:
    """`mismatch` of a PaymentIntent read from Stripe."""
    return mismatch(
        session,
        payment,
        intent_id=intent.id,
        amount_cents=intent.amount_cents,
        currency=intent.currency,
        customer=intent.customer,
    )


def succeeded_at_stripe(session: Session, payment: Payment, intent_id: str) -> bool:
    """Whether Stripe, asked now, says this PaymentIntent succeeded for this payment: what an event
    needs before it turns a failed or canceled payment into a succeeded one."""
    intent = gateway.retrieve_payment_intent(intent_id)
    problem = intent_mismatch(session, payment, intent)
    if intent.status != "succeeded" or problem:
        log.warning(
            "payment %s is %s and Stripe does not confirm that %s succeeded (%s)",
            payment.public_id,
            payment.status,
            intent_id,
            problem or f"Stripe says {intent.status}",
        )
        return False
    return True


def method_type(session: Session, account_id: int, stripe_payment_method_id: str) -> str:
    """ "card" or "sepa_debit": the saved method's type, which its PaymentIntent must name."""
    kind = session.exec(
        select(PaymentMethod.kind).where(
            PaymentMethod.account_id == account_id, PaymentMethod.stripe_payment_method_id == stripe_payment_method_id
        )
    ).first()
    return kind or "card"


def metadata(payment: Payment, purpose: str, **links: str) -> dict[str, str]:
    """What a PaymentIntent or Checkout Session carries, so that Stripe's webhook finds the
    payment even when the request lost Stripe's answer."""
    return {"payment_id": payment.public_id, "account_id": str(payment.account_id), "purpose": purpose, **links}


def charge(session: Session, payment: Payment, *, idempotency_key: str, metadata: dict[str, str]) -> str:
    """Charge `payment.amount_cents` to its saved method while the payer is on the page, record
    the intent and its status; returns the client secret Stripe.js needs for 3-D Secure.

    Commits the caller's transaction first (see the module's docstring), so the payment is stored
    before Stripe can charge, and no lock is held during the call; what follows is a second
    transaction, committed by the caller. A decline or an unreachable Stripe leaves the payment
    failed, so should Stripe have charged after all, its webhook finds the payment through the
    intent's metadata (the payment's id)."""
    customer_id = customer_for(session, payment.account_id)
    kind = method_type(session, payment.account_id, payment.stripe_payment_method_id)
    session.commit()
    try:
        intent = gateway.create_payment_intent(
            customer_id=customer_id,
            payment_method_id=payment.stripe_payment_method_id,
            amount_cents=payment.amount_cents,
            idempotency_key=idempotency_key,
            off_session=False,
            metadata=metadata,
            method_type=kind,
        )
    except gateway.CardDeclined as exc:
        _locked(session, payment)
        payment.stripe_payment_intent_id = payment.stripe_payment_intent_id or exc.payment_intent_id or None
        set_status(session, payment, "failed", exc.message)
        return ""
    except gateway.PaymentProviderError as exc:
        _locked(session, payment)
        if isinstance(exc, gateway.PaymentOutcomeUnknown):
            payment.outcome_unknown_at = utcnow()
        set_status(session, payment, "failed", exc.message)
        return ""
    _locked(session, payment)
    payment.stripe_payment_intent_id = intent.id
    set_status(session, payment, intent.status, intent.failure_message)
    return intent.client_secret


def charge_off_session(
    session: Session, payment: Payment, *, purpose: str, now: datetime | None = None, **links: str
) -> None:
    """Charge the payment's saved method while the payer is away (auto recharge, renewals) and
    record how it ended. Safe to run again at any point: the caller's work (the opened payment)
    is committed before Stripe is called, and an intent Stripe already has is found rather than
    made twice. Nobody can authenticate off-session, so an intent that asks for 3-D Secure is
    cancelled (it can never charge later): the payment ends "canceled" with
    AUTHENTICATION_MESSAGE, and its kind asks the payer to pay on-session. Stripe unreachable
    raises, leaving the payment pending for the rerun. Each run is counted by its outcome (the
    payment's status, or error)."""
    outcome = "error"
    try:
        outcome = _charge_off_session(session, payment, purpose, now, links)
    finally:
        metrics.record_off_session_charge(purpose, outcome)


def _charge_off_session(
    session: Session, payment: Payment, purpose: str, now: datetime | None, links: dict[str, str]
) -> str:
    customer_id = customer_for(session, payment.account_id)
    kind = method_type(session, payment.account_id, payment.stripe_payment_method_id)
    session.commit()
    try:
        intent = _off_session_intent(payment, customer_id, kind, metadata(payment, purpose, **links))
    except gateway.CardDeclined as exc:
        if not (exc.authentication_required and exc.payment_intent_id):
            _record(session, payment, exc.payment_intent_id, "failed", exc.message, now)
            return "failed"
        # Real Stripe declines an off-session charge that needs 3-D Secure...
        intent = gateway.cancel_payment_intent(exc.payment_intent_id)
    if intent.status == "requires_action":
        # ...and localstripe leaves it waiting.
        intent = gateway.cancel_payment_intent(intent.id)
    # Only this path cancels an off-session intent, so a cancelled one (also found by a rerun) is
    # one that asked for authentication.
    message = AUTHENTICATION_MESSAGE if intent.status == "canceled" else intent.failure_message
    _record(session, payment, intent.id, intent.status, message, now)
    return intent.status


def _off_session_intent(payment: Payment, customer_id: str, kind: str, metadata: dict[str, str]) -> gateway.Intent:
    """The payment's intent: known, found in Stripe, or created now (off-session, confirmed)."""
    if payment.stripe_payment_intent_id:
        return gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
    # A pending payment without an intent id may have reached Stripe before a crash. Real Stripe
    # would answer a repeated idempotency key with that intent, but localstripe ignores the key:
    # so look the intent up by the payment id in its metadata before creating one.
    found = gateway.find_payment_intent(customer_id, payment.public_id, payment.created_at)
    if found is not None:
        return found
    return gateway.create_payment_intent(
        customer_id=customer_id,
        payment_method_id=payment.stripe_payment_method_id,
        amount_cents=payment.amount_cents,
        idempotency_key=payment.idempotency_key,
        off_session=True,
        metadata=metadata,
        method_type=kind,
    )


def _record(
    session: Session, payment: Payment, intent_id: str | None, status: str, message: str, now: datetime | None
) -> None:
    # Locked and re-read: the webhook for this intent may have recorded it meanwhile.
    session.refresh(payment, with_for_update=True)
    if intent_id and not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = intent_id
    set_status(session, payment, status, message, now=now)


def open_and_charge(
    session: Session,
    paying_for: Invoice | PlanChange,
    amount_cents: int,
    *,
    card: PaymentMethod,
    user_id: int | None,
    idempotency_key: str,
) -> tuple[Payment, str]:
    """Open the payment of an invoice or a plan change, link the two both ways (the intent's
    metadata names the row too) and `charge` it, once per payment at Stripe; returns the payment
    and the client secret."""
    invoice = paying_for if isinstance(paying_for, Invoice) else None
    change = paying_for if isinstance(paying_for, PlanChange) else None
    method = "invoice" if invoice else "plan"
    payment, _ = open_payment(
        session,
        account_id=paying_for.account_id,
        amount_cents=amount_cents,
        method=method,
        idempotency_key=idempotency_key,
        payment_method_id=card.stripe_payment_method_id,
        created_by_user_id=user_id,
        invoice_id=invoice.id if invoice else None,
        plan_change_id=change.id if change else None,
    )
    paying_for.payment_id = payment.id
    session.add(paying_for)
    link = {"invoice_id": paying_for.public_id} if invoice else {"plan_change_id": paying_for.public_id}
    secret = charge(
        session,
        payment,
        idempotency_key=f"{method}:{paying_for.public_id}:{payment.public_id}",
        metadata=metadata(payment, "invoice" if invoice else "plan_change", **link),
    )
    return payment, secret


def _locked(session: Session, payment: Payment) -> None:
    """After the call: the payment locked, and everything the session holds read afresh, since
    Stripe's webhook or a replayed request may have settled the payment meanwhile. The kind's
    lock comes first, in the order `set_status` takes them, so that we cannot deadlock."""
    kind = _KINDS.get(payment.method)
    if kind is not None and kind.lock is not None:
        kind.lock(session, payment)
    session.expire_all()
    session.refresh(payment, with_for_update=True)


def refresh(session: Session, payment: Payment, *, now: datetime | None = None) -> str:
    """An unfinished payment brought up to date from Stripe (after 3-D Secure, or on a replayed
    request); returns the client secret the page needs while 3-D Secure is pending. An ended
    payment is left as recorded. A payment whose request lost Stripe's answer (its intent id was
    never stored) is looked up at Stripe by its id in the intent's metadata; if Stripe has none
    after `UNREACHED_AFTER`, the charge never reached Stripe and the payment failed."""
    if payment.status in (*ENDED, *AFTER_SUCCESS):
        return ""
    if payment.stripe_payment_intent_id:
        intent: gateway.Intent | None = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
    else:
        intent = gateway.find_payment_intent(
            customer_for(session, payment.account_id), payment.public_id, payment.created_at
        )
    if intent is None:
        if payment.created_at + UNREACHED_AFTER <= (now or utcnow()):
            set_status(session, payment, "failed", NOT_REACHED_MESSAGE)
        return ""
    payment.stripe_payment_intent_id = intent.id
    set_status(session, payment, intent.status, intent.failure_message)
    return intent.client_secret


def reconcile(session: Session, payment: Payment, *, now: datetime | None = None) -> None:
    """Ask Stripe what became of a payment whose outcome we do not know (its answer was lost, it
    never left pending, or it has waited long) and record that, through `set_status`, so that its
    kind settles it exactly once. Unlike `refresh`, a payment recorded as failed because Stripe's
    answer was lost becomes succeeded when Stripe charged after all. Stripe is asked with no
    transaction open (on SQLite one would hold the write lock); the payment is then locked and read
    afresh, since the webhook may have settled it meanwhile."""
    now = now or utcnow()
    intent_id = payment.stripe_payment_intent_id
    customer_id = "" if intent_id else customer_for(session, payment.account_id)
    session.commit()
    if intent_id:
        intent: gateway.Intent | None = gateway.retrieve_payment_intent(intent_id)
    else:
        intent = gateway.find_payment_intent(customer_id, payment.public_id, payment.created_at)
    _locked(session, payment)
    if payment.status in SUCCEEDED:
        payment.outcome_unknown_at = None
        return
    if intent is None:
        if payment.created_at + UNREACHED_AFTER <= now:
            payment.outcome_unknown_at = None
            set_status(session, payment, "failed", NOT_REACHED_MESSAGE, now=now)
        return
    problem = intent_mismatch(session, payment, intent)
    if problem:
        log.warning("payment %s: Stripe's %s does not match (%s): left as it is", payment.public_id, intent.id, problem)
        payment.outcome_unknown_at = None
        session.add(payment)
        return
    payment.stripe_payment_intent_id = intent.id
    if intent.status in ENDED:
        payment.outcome_unknown_at = None
    set_status(session, payment, intent.status, intent.failure_message, now=now)


def cancel_waiting(session: Session, payment: Payment, message: str) -> None:
    """Before a new attempt: a payment left waiting for 3-D Secure is cancelled at Stripe, or
    found to have succeeded (or failed) meanwhile. One whose request lost Stripe's answer is
    brought up to date from Stripe (`refresh`)."""
    if payment.status == "pending" and not payment.stripe_payment_intent_id:
        refresh(session, payment)
        return
    if payment.status != "requires_action" or not payment.stripe_payment_intent_id:
        return
    intent = gateway.retrieve_payment_intent(payment.stripe_payment_intent_id)
    if intent.status == "requires_action":
        intent = gateway.cancel_payment_intent(payment.stripe_payment_intent_id)
    set_status(session, payment, intent.status, intent.failure_message or message)


def client_secret(payment: Payment, secret: str) -> str:
    """The secret is only handed to the page while the payment waits for 3-D Secure."""
    return secret if payment.status == "requires_action" else ""


class Outcome(TypedDict):
    """The fields every page-facing payment result shares (TopupResult, PayResult)."""

    status: str
    amount_cents: int
    payment_intent_id: str
    client_secret: str
    message: str


def outcome(payment: Payment, secret: str = "") -> Outcome:
    return Outcome(
        status=payment.status,
        amount_cents=payment.amount_cents,
        payment_intent_id=payment.stripe_payment_intent_id or "",
        client_secret=client_secret(payment, secret),
        message=payment.failure_message,
    )


def latest(session: Session, account_id: int, methods: tuple[str, ...], limit: int) -> list[Payment]:
    return list(
        session.exec(
            select(Payment)
            .where(Payment.account_id == account_id, col(Payment.method).in_(methods))
            .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
            .limit(limit)
        ).all()
    )
