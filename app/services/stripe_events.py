"""Stripe webhook events: each stored once by its id, then applied. Crediting is keyed by the
PaymentIntent or Checkout Session id, so an event that repeats what the request already saw
moves no money; an invoice payment marks its invoice paid once. Every payment event goes through
payments.set_status, which settles the payment by what its kind registered. An event counts only
when it describes what we asked Stripe for (payments.mismatch: the payment's PaymentIntent,
amount, currency and the account's customer); otherwise it is logged and moves nothing. A failed
or canceled payment becomes succeeded only when Stripe, asked again, confirms it. Refunds and
disputes take credits back (app.services.refunds). Tax ID events keep the tax registrations'
verification status current. Every look-up names the account: found first by the Stripe customer
the object names (a dispute names none: its PaymentIntent's, asked of Stripe), then the account's
rows by (account_id, Stripe id), so on a database distributed by account each statement reaches
the account's node alone; an object whose customer is not ours matches no payment. Callers commit
(one transaction per event)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.jobs.queue import enqueue
from app.models import Payment, StripeEvent, utcnow
from app.payments import gateway
from app.services import customers, payments, refunds, tax

# What a settled payment means is registered by these modules (payments.on_settled).
from app.services import invoices, recharge, subscription, topups  # noqa: F401  # isort: skip

log = logging.getLogger("ledgerdesk.stripe_events")

Handler = Callable[[Session, dict[str, Any]], None]


class UnknownPayment(Exception):
    """The event names a payment of ours (the payment id in its metadata) that is not in the
    database: its transaction has not committed yet, or was lost. The receiver then keeps the
    event unapplied (`defer`) and a job applies it once the payment is there."""


# A deferred event is tried again with the job queue's backoff (2 s, 4 s, … about 1 h in all).
DEFERRED_ATTEMPTS = 12


def record_and_handle(session: Session, event: dict[str, Any]) -> bool:
    """Store and apply a verified event. False for an event applied before: nothing changes. An
    event stored but not yet applied (deferred) is applied now."""
    row = session.exec(select(StripeEvent).where(StripeEvent.event_id == event["id"]).with_for_update()).first()
    if row is not None and row.processed_at is not None:
        return False
    if row is None:
        row = _insert(session, event)
        if row is None:
            return False
    handler = _HANDLERS.get(row.type)
    if handler is not None:
        handler(session, event["data"]["object"])
    row.processed_at = utcnow()
    session.add(row)
    session.flush()
    return True


def _insert(session: Session, event: dict[str, Any]) -> StripeEvent | None:
    """The event stored, not yet applied; None when a concurrent delivery committed it meanwhile."""
    row = StripeEvent(event_id=event["id"], type=event["type"], payload=json.dumps(event))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def defer(session: Session, event: dict[str, Any]) -> None:
    """Keep an event whose payment is not in the database yet (UnknownPayment), unapplied, and
    apply it from a job ("stripe_event") once the payment is there: Stripe's own redelivery
    cannot be counted on (it gives up, and localstripe never retries)."""
    if session.exec(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])).first() is None:
        _insert(session, event)
    enqueue(
        session,
        "stripe_event",
        {"event_id": event["id"]},
        dedupe_key=f"stripe_event:{event['id']}",
        max_attempts=DEFERRED_ATTEMPTS,
    )


def apply_deferred(session: Session, event_id: str) -> None:
    """Job "stripe_event": a deferred event applied, once; UnknownPayment again makes the job retry."""
    row = session.exec(select(StripeEvent).where(StripeEvent.event_id == event_id)).first()
    if row is not None and row.processed_at is None:
        record_and_handle(session, json.loads(row.payload))


def _payment(
    session: Session, column, stripe_object: dict[str, Any], methods: set[str], customer: str
) -> Payment | None:
    """Our Payment for a Stripe object of the customer's account: by its id, else by the
    payment_id we put in its metadata (a payment whose request lost Stripe's answer). Raises
    UnknownPayment when the metadata names a payment we do not have."""
    stripe_id = stripe_object["id"]
    metadata = stripe_object.get("metadata") or {}
    account_id = customers.account_with_customer(session, customer)
    if account_id is None and metadata.get("account_id", "").isdigit():
        # A customer not stored yet (its transaction has not committed): the account our metadata
        # names, whose customer the payment is then checked against (_matches).
        account_id = int(metadata["account_id"])
    payment = None
    if account_id is not None:
        payment = session.exec(select(Payment).where(Payment.account_id == account_id, column == stripe_id)).first()
    if payment is None and account_id is not None and metadata.get("payment_id"):
        if metadata.get("account_id") != str(account_id):
            log.warning("stripe event for %s names another account than its customer's", stripe_id)
            return None
        payment = session.exec(
            select(Payment).where(Payment.account_id == account_id, Payment.public_id == metadata["payment_id"])
        ).first()
        if payment is None:
            raise UnknownPayment(f"stripe event for {stripe_id} names payment {metadata['payment_id']}, not found")
    if payment is None or payment.method not in methods:
        log.warning("stripe event for %s matches no payment of ours", stripe_id)
        return None
    return payment


def _matches(session: Session, payment: Payment, stripe_object: dict[str, Any], **what: Any) -> bool:
    """Whether the event's object is what we asked Stripe for with this payment; a mismatch is
    logged with ids and amounts only."""
    problem = payments.mismatch(session, payment, **what)
    if problem:
        log.warning(
            "stripe %s %s does not match payment %s (%s): ignored",
            stripe_object.get("object", "object"),
            stripe_object.get("id"),
            payment.public_id,
            problem,
        )
    return not problem


def _intent_payment(session: Session, intent: dict[str, Any]) -> Payment | None:
    payment = _payment(
        session,
        Payment.stripe_payment_intent_id,
        intent,
        {"card", "auto_recharge", "invoice", "renewal", "plan"},
        gateway.id_of(intent.get("customer")),
    )
    if payment is None or not _matches(
        session,
        payment,
        intent,
        intent_id=intent["id"],
        amount_cents=int(intent.get("amount") or 0),
        currency=intent.get("currency") or "",
        customer=gateway.id_of(intent.get("customer")),
    ):
        return None
    if not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = intent["id"]
    return payment


def _payment_intent_succeeded(session: Session, intent: dict[str, Any]) -> None:
    payment = _intent_payment(session, intent)
    if payment is None:
        return
    if payment.status in ("failed", "canceled") and not payments.succeeded_at_stripe(session, payment, intent["id"]):
        return
    payments.set_status(session, payment, "succeeded")


def _payment_intent_failed(session: Session, intent: dict[str, Any]) -> None:
    if (payment := _intent_payment(session, intent)) is not None:
        message = (intent.get("last_payment_error") or {}).get("message") or ""
        payments.set_status(session, payment, "failed", message)


def _checkout_payment(session: Session, checkout: dict[str, Any]) -> Payment | None:
    payment = _payment(
        session, Payment.stripe_checkout_session_id, checkout, {"crypto"}, gateway.id_of(checkout.get("customer"))
    )
    if payment is None:
        return None
    if payment.stripe_checkout_session_id and payment.stripe_checkout_session_id != checkout["id"]:
        log.warning("stripe checkout.session %s is not payment %s's: ignored", checkout["id"], payment.public_id)
        return None
    if not _matches(session, payment, checkout, **_checkout_terms(checkout)):
        return None
    if not payment.stripe_checkout_session_id:
        payment.stripe_checkout_session_id = checkout["id"]
    _record_checkout_intent(session, payment, gateway.id_of(checkout.get("payment_intent")))
    return payment


def _record_checkout_intent(session: Session, payment: Payment, intent_id: str) -> None:
    """The PaymentIntent a Checkout Session paid with: refunds and disputes name only it."""
    if payment.stripe_payment_intent_id or not intent_id:
        return
    other = select(Payment.id).where(
        Payment.account_id == payment.account_id, Payment.stripe_payment_intent_id == intent_id
    )
    if session.exec(other).first() is not None:
        log.warning(
            "stripe checkout for payment %s names intent %s, another payment's: not recorded",
            payment.public_id,
            intent_id,
        )
        return
    payment.stripe_payment_intent_id = intent_id
    session.add(payment)


def _checkout_terms(checkout: dict[str, Any]) -> dict[str, Any]:
    return {
        "intent_id": "",
        "amount_cents": int(checkout.get("amount_total") or 0),
        "currency": checkout.get("currency") or "",
        "customer": gateway.id_of(checkout.get("customer")),
    }


def _checkout_completed(session: Session, checkout: dict[str, Any]) -> None:
    """Crypto may settle later: then "completed" comes unpaid and async_payment_succeeded follows."""
    if checkout.get("payment_status") != "paid" or (payment := _checkout_payment(session, checkout)) is None:
        return
    if payment.status in ("failed", "canceled"):
        found = gateway.retrieve_checkout_session(checkout["id"])
        at_stripe = {"intent_id": "", "amount_cents": found.amount_cents, "currency": found.currency}
        if found.payment_status != "paid" or not _matches(
            session, payment, checkout, **at_stripe, customer=found.customer
        ):
            log.warning(
                "payment %s is %s and Stripe does not confirm %s paid", payment.public_id, payment.status, found.id
            )
            return
    payments.set_status(session, payment, "succeeded")


def _checkout_failed(session: Session, checkout: dict[str, Any]) -> None:
    if (payment := _checkout_payment(session, checkout)) is not None:
        payments.set_status(session, payment, "failed", "The crypto payment did not complete.")


def _charge_payment(session: Session, stripe_object: dict[str, Any], customer: str) -> Payment | None:
    """The succeeded payment a charge, or a dispute on it, belongs to (by its PaymentIntent and the
    customer's account)."""
    intent_id = gateway.id_of(stripe_object.get("payment_intent"))
    account_id = customers.account_with_customer(session, customer)
    payment = None
    if intent_id and account_id is not None:
        payment = session.exec(
            select(Payment).where(Payment.account_id == account_id, Payment.stripe_payment_intent_id == intent_id)
        ).first()
    if payment is None:
        log.warning("stripe %s %s matches no payment of ours", stripe_object.get("object"), stripe_object.get("id"))
        return None
    if payment.status not in payments.SUCCEEDED:
        log.warning(
            "stripe %s %s is for payment %s, which is %s: ignored",
            stripe_object.get("object"),
            stripe_object.get("id"),
            payment.public_id,
            payment.status,
        )
        return None
    return payment


def _charge_refunded(session: Session, charge: dict[str, Any]) -> None:
    payment = _charge_payment(session, charge, gateway.id_of(charge.get("customer")))
    if payment is not None and _matches(
        session,
        payment,
        charge,
        intent_id=gateway.id_of(charge.get("payment_intent")),
        amount_cents=int(charge.get("amount") or 0),
        currency=charge.get("currency") or "",
        customer=gateway.id_of(charge.get("customer")),
    ):
        refunds.charge_refunded(
            session, payment, charge_id=charge["id"], refunded_cents=int(charge.get("amount_refunded") or 0)
        )


def _dispute(session: Session, dispute: dict[str, Any], event: str) -> None:
    """A dispute names no customer (its PaymentIntent's is asked of Stripe); its amount may be
    less than the charge's."""
    intent_id = gateway.id_of(dispute.get("payment_intent"))
    payment = _charge_payment(session, dispute, gateway.payment_intent_customer(intent_id) if intent_id else "")
    amount = int(dispute.get("amount") or 0)
    if payment is None or not _matches(
        session,
        payment,
        dispute,
        intent_id=gateway.id_of(dispute.get("payment_intent")),
        amount_cents=None,
        currency=dispute.get("currency") or "",
        customer=None,
    ):
        return
    if not 0 < amount <= payment.amount_cents:
        log.warning(
            "stripe dispute %s of %s is not within payment %s: ignored", dispute["id"], amount, payment.public_id
        )
        return
    status = dispute.get("status") or ""
    if event in ("created", "funds_withdrawn"):
        refunds.dispute_withdrawn(
            session,
            payment,
            dispute_id=dispute["id"],
            amount_cents=amount,
            status=status,
            funds_withdrawn=event == "funds_withdrawn",
        )
    else:
        refunds.dispute_settled(
            session,
            payment,
            dispute_id=dispute["id"],
            amount_cents=amount,
            status=status,
            reinstated=event == "funds_reinstated",
        )


def _dispute_handler(event: str) -> Handler:
    return lambda session, dispute: _dispute(session, dispute, event)


def _setup_intent_succeeded(session: Session, setup_intent: dict[str, Any]) -> None:
    """No money moves. The page that confirmed the card attaches it and syncs our copy
    (gateway.attach_payment_method, payment_methods.sync_payment_methods); a card saved elsewhere, such
    as in the Stripe Dashboard, would be synced from here."""


def _tax_id_updated(session: Session, tax_id: dict[str, Any]) -> None:
    """Stripe verified (or could not verify) a customer tax ID."""
    tax.apply_stripe_tax_id(session, tax_id)


def _tax_id_deleted(session: Session, tax_id: dict[str, Any]) -> None:
    tax.apply_stripe_tax_id(session, tax_id, deleted=True)


_HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "checkout.session.async_payment_failed": _checkout_failed,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_handler("created"),
    "charge.dispute.funds_withdrawn": _dispute_handler("funds_withdrawn"),
    "charge.dispute.funds_reinstated": _dispute_handler("funds_reinstated"),
    "charge.dispute.closed": _dispute_handler("closed"),
    "setup_intent.succeeded": _setup_intent_succeeded,
    "customer.tax_id.updated": _tax_id_updated,
    "customer.tax_id.deleted": _tax_id_deleted,
}
