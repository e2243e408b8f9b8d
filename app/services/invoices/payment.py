"""Paying an open invoice with a saved card or from the credit balance, and what a settled
"invoice" payment means (this module registers it): the invoice is paid and its overage credited
back to the balance. A payment Stripe gives back (app.services.refunds) leaves its invoices
refunded or disputed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.errors import Conflict, NotFound, ValidationFailed
from app.models import CreditBalance, Invoice, LedgerEntry, Payment, utcnow
from app.services import audit, ledger, payments
from app.services.customers import account_of
from app.services.invoices.issuing import label
from app.services.money import format_usd
from app.services.payment_methods import method_of
from app.services.payment_outcome import PaymentOutcome
from app.services.permissions import Actor, Permission, require

log = logging.getLogger("ledgerdesk.invoices")

# The kinds of payment that pay an invoice: on the Invoices page, and a renewal collected off-session.
INVOICE_PAYMENTS = ("invoice", "renewal")
# Balance History's description of the credit balance paying an invoice (seed 003's words).
BALANCE_APPLIED = "Applied credit balance to invoice"


@dataclass(frozen=True)
class PayResult(PaymentOutcome):
    """After 3-D Secure the page calls finish_invoice_payment."""

    invoice_id: str


def pay_invoice(
    session: Session, actor: Actor, *, invoice_id: str, payment_method_id: str, request_key: str
) -> PayResult:
    """Charge one of the account's saved cards for an open invoice, once. The Payment is keyed
    by the request, so a replayed request returns what the first did and charges nothing more;
    the invoice row is locked, so two requests for the same invoice cannot both charge. Stripe's
    idempotency key is per invoice and attempt: after a declined card, another card can be
    tried (reusing the key would have Stripe replay the decline)."""
    require(actor, Permission.BILLING_MANAGE)
    if not request_key:
        raise ValidationFailed("A request key is required.")
    invoice = session.exec(
        select(Invoice).where(Invoice.account_id == actor.account_id, Invoice.public_id == invoice_id).with_for_update()
    ).first()
    if invoice is None:
        raise NotFound("No such invoice.")
    key = f"invoice:{actor.account_id}:{invoice.public_id}:{request_key}"
    replayed = payments.by_key(session, actor.account_id, key)
    if replayed is not None:
        return _result(invoice, replayed, payments.refresh(session, replayed))
    if invoice.status == "paid":
        raise Conflict("This invoice is already paid.")
    if invoice.status != "open" or invoice.total_cents <= 0:
        raise Conflict("Only open invoices can be paid.")
    method = method_of(session, actor.account_id, payment_method_id)
    if method is None:
        raise ValidationFailed("Select one of your saved cards.", field="payment_method")
    if _attempt_under_way(session, invoice):
        if invoice.status == "paid":
            return _result(invoice, _paid_by(session, invoice))
        raise Conflict("A payment of this invoice is already processing.")
    payment, secret = payments.open_and_charge(
        session, invoice, invoice.total_cents, card=method, user_id=actor.user_id, idempotency_key=key
    )
    audit.record(
        session,
        actor,
        "payment.invoice",
        f"Paid invoice {label(invoice, account_of(session, actor.account_id))} ({format_usd(invoice.total_cents)}): "
        f"{payment.status}",
    )
    return _result(invoice, payment, secret)


def balance_covers(invoice: Invoice, balance_cents: int) -> bool:
    """Whether the credit balance pays the open invoice without going below zero. Its overage was
    already taken from the balance by the usage it bills, and paying the invoice gives it back,
    so only the rest of the invoice costs credits."""
    return invoice.status == "open" and 0 < invoice.total_cents <= balance_cents + invoice.overage_cents


def pay_from_balance(session: Session, actor: Actor, *, invoice_id: str, now: datetime | None = None) -> Invoice:
    """Pay an open invoice from the account's credit balance: the invoice is paid (its overage
    credited back, as any payment does) and its total is one `invoice_applied` debit, "Applied
    credit balance to invoice". Once: the invoice row is locked and the debit keyed by it, so a
    second request finds it paid. Never below zero: the overage credit line is not for this."""
    require(actor, Permission.BILLING_MANAGE)
    invoice = session.exec(
        select(Invoice).where(Invoice.account_id == actor.account_id, Invoice.public_id == invoice_id).with_for_update()
    ).first()
    if invoice is None:
        raise NotFound("No such invoice.")
    # An attempt found to have succeeded meanwhile leaves the invoice paid (refused below).
    if invoice.status == "open" and _attempt_under_way(session, invoice) and invoice.status == "open":
        raise Conflict("A card payment of this invoice is already processing.")
    if invoice.status == "paid":
        raise Conflict("This invoice is already paid.")
    if invoice.status != "open" or invoice.total_cents <= 0:
        raise Conflict("Only open invoices can be paid.")
    balance = session.exec(
        select(CreditBalance).where(CreditBalance.account_id == actor.account_id).with_for_update()
    ).first()
    balance_cents = balance.balance_cents if balance is not None else 0
    if not balance_covers(invoice, balance_cents):
        raise Conflict(
            f"Your credit balance ({format_usd(balance_cents)}) does not cover invoice "
            f"{label(invoice, account_of(session, actor.account_id))}; pay it with a card or add usage credits."
        )
    now = now or utcnow()
    mark_paid(session, invoice, None, now)
    ledger.debit(
        session,
        account_id=actor.account_id,
        amount_cents=invoice.total_cents,
        source="invoice_applied",
        description=BALANCE_APPLIED,
        idempotency_key=f"balance_applied:{invoice.public_id}",
        now=now,
    )
    audit.record(
        session,
        actor,
        "payment.invoice",
        f"Paid invoice {label(invoice, account_of(session, actor.account_id))} "
        f"({format_usd(invoice.total_cents)}) from the credit balance",
        now=now,
    )
    return invoice


def finish_invoice_payment(session: Session, actor: Actor, payment_intent_id: str) -> PayResult:
    """After the browser's 3-D Secure step: ask Stripe how the intent ended."""
    require(actor, Permission.BILLING_MANAGE)
    payment = payments.by_intent(session, actor.account_id, payment_intent_id, method="invoice")
    invoice = (
        session.get(Invoice, (payment.account_id, payment.invoice_id))
        if payment is not None and payment.invoice_id
        else None
    )
    if payment is None or invoice is None:
        raise NotFound("No such payment.")
    return _result(invoice, payment, payments.refresh(session, payment))


def _attempt_under_way(session: Session, invoice: Invoice) -> bool:
    """Whether the invoice's latest payment attempt may still charge. An attempt left waiting
    for 3-D Secure is cancelled at Stripe (or found to have succeeded) so that a new one can start;
    one whose request lost Stripe's answer is looked up at Stripe (payments.cancel_waiting)."""
    previous = session.get(Payment, (invoice.account_id, invoice.payment_id)) if invoice.payment_id else None
    if previous is None or previous.status in payments.ENDED:
        return False
    if previous.status in ("requires_action", "pending"):
        payments.cancel_waiting(session, previous, "Cancelled for a new payment.")
        return previous.status not in ("failed", "canceled")
    return True


@payments.on_settled("invoice")
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    """A succeeded payment marks its invoice paid, once, whether the request or Stripe's webhook
    saw it first."""
    if payment.status == "succeeded" and payment.invoice_id is not None:
        invoice = session.get(Invoice, (payment.account_id, payment.invoice_id))
        if invoice is not None:
            mark_paid(session, invoice, payment)


def _paid_by(session: Session, invoice: Invoice) -> Payment:
    payment = session.get(Payment, (invoice.account_id, invoice.payment_id)) if invoice.payment_id else None
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def mark_paid(session: Session, invoice: Invoice, payment: Payment | None, now: datetime | None = None) -> None:
    """The invoice is paid: its payment date is set and, for its overage, an `invoice_applied`
    ledger credit (keyed by the invoice) brings the balance back."""
    if invoice.status == "paid":
        if payment is not None and invoice.payment_id != payment.id:
            log.error("invoice %s was paid twice (payment %s): refund one", invoice.public_id, payment.public_id)
        return
    if invoice.status == "void":
        log.error(
            "invoice %s was paid after it was voided (payment %s): refund it",
            invoice.public_id,
            payment.public_id if payment else None,
        )
        return
    now = now or utcnow()
    invoice.status = "paid"
    invoice.paid_at = now
    if payment is not None:
        invoice.payment_id = payment.id
    session.add(invoice)
    session.flush()
    if invoice.overage_cents > 0:
        account = account_of(session, invoice.account_id)
        ledger.credit(
            session,
            account_id=invoice.account_id,
            amount_cents=invoice.overage_cents,
            source="invoice_applied",
            description=f"Invoice {label(invoice, account)} paid: overage applied to your balance",
            idempotency_key=f"invoice_applied:{invoice.public_id}",
            now=now,
        )


def _result(invoice: Invoice, payment: Payment, client_secret: str = "") -> PayResult:
    return PayResult(invoice_id=invoice.public_id, **payments.outcome(payment, client_secret))


def overage_bought(session: Session, payment: Payment) -> int:
    """The usage credits a payment of an invoice (INVOICE_PAYMENTS) bought: the overage of the
    invoice it paid (the `invoice_applied` credit), none if another payment paid it."""
    invoice = session.get(Invoice, (payment.account_id, payment.invoice_id)) if payment.invoice_id is not None else None
    if invoice is None or invoice.payment_id != payment.id:
        return 0
    applied = session.exec(
        select(LedgerEntry.amount_cents).where(
            LedgerEntry.account_id == invoice.account_id,
            LedgerEntry.idempotency_key == f"invoice_applied:{invoice.public_id}",
        )
    ).first()
    return applied or 0


# What the invoices a payment paid become when Stripe gives its money back, from which statuses.
_REVERSALS = {"refunded": ("paid", "disputed"), "disputed": ("paid",), "paid": ("disputed",)}


def payment_reversed(session: Session, payment: Payment, status: str) -> None:
    """The invoices this payment paid (an invoice, a plan change's, a receipt) follow its money:
    "refunded" once Stripe refunded it in full, "disputed" while a dispute holds it, "paid" again
    when the dispute is won."""
    invoices = session.exec(
        select(Invoice).where(
            Invoice.account_id == payment.account_id,
            Invoice.payment_id == payment.id,
            col(Invoice.status).in_(_REVERSALS[status]),
        )
    ).all()
    for invoice in invoices:
        invoice.status = status
        session.add(invoice)
    session.flush()
