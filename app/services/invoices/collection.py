"""Collecting renewals (dunning): the period close's invoice of a card account is charged
off-session to the default payment method, and retried on a schedule when that fails.

`start` (called by the monthly job "close_period") enqueues job "collect_invoice" {invoice_id, attempt: 1};
`collect` is that job. Each attempt is one Payment of kind "renewal", keyed by invoice and attempt
("renewal:<invoice>:<attempt>", also Stripe's idempotency key), committed before Stripe is
called (`payments.charge_off_session`), so a rerun of the job finds it and never charges twice.
This module registers what a settled "renewal" payment means, whether the job or Stripe's webhook
saw it first: a success pays the invoice; a failure is counted once (a conditional UPDATE of
`Invoice.failed_collections` from attempt − 1 to attempt), emailed to the billing contacts with
the link to the Invoices page, and either retried (DUNNING_RETRY_DAYS after the first failure) or,
after the last, handed to the operator's final action (DUNNING_FINAL_ACTION: job "renewal_unpaid",
which steps the plan down to Basic). A charge that needs 3-D Secure is cancelled at Stripe and the
email asks the customer to pay on the Invoices page, where the bank can ask them to confirm.

An account is past due while it has an open invoice whose charge failed or that is past its due
date (invoice-priced accounts are never charged off-session: they pay their invoices within 30
days). Callers commit, except that `collect` commits its Payment before calling Stripe."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.config import get_settings
from app.jobs.queue import enqueue
from app.models import Invoice, Payment, utcnow
from app.services import payments
from app.services.customers import account_of
from app.services.email import email_billing_contacts
from app.services.invoices.issuing import label
from app.services.invoices.payment import mark_paid
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.payment_methods import default_method
from app.services.plans import get_plan
from app.services.timefmt import format_datetime, zone

INVOICES_PATH = "/billing/invoices"
NO_CARD_MESSAGE = "There is no default payment method to charge."
# How long a collection waits for a payment of the invoice the customer started themselves.
RECHECK_AFTER = timedelta(hours=1)


def payment_key(invoice: Invoice, attempt: int) -> str:
    """The Payment's idempotency key and Stripe's: one charge per invoice and attempt."""
    return f"renewal:{invoice.public_id}:{attempt}"


def start(session: Session, invoice: Invoice, now: datetime) -> None:
    """Charge a period close's open invoice now, off-session, unless the account pays by invoice
    or has no default payment method (it pays on the Invoices page by the due date). Idempotent."""
    if invoice.status != "open" or invoice.total_cents <= 0 or invoice.source != "period_close":
        return
    if billing_settings(session, invoice.account_id).invoice_priced:
        return
    if default_method(session, invoice.account_id) is None:
        return
    _schedule(session, invoice, 1, now)


def _schedule(session: Session, invoice: Invoice, attempt: int, run_at: datetime) -> None:
    enqueue(
        session,
        "collect_invoice",
        {"account_id": invoice.account_id, "invoice_id": invoice.id, "attempt": attempt},
        dedupe_key=f"collect_invoice:{invoice.public_id}:{attempt}",
        run_at=run_at,
    )


def collect(session: Session, account_id: int, invoice_id: int, attempt: int, now: datetime | None = None) -> None:
    """Job "collect_invoice": attempt `attempt` at charging the invoice (or the invoice that
    replaced it, when a plan change reissued it) to the default payment method, once."""
    now = now or utcnow()
    invoice = _current(session, account_id, invoice_id)
    if invoice is None or invoice.status != "open" or invoice.failed_collections >= attempt:
        return  # paid or voided meanwhile, or this attempt was counted already
    key = payment_key(invoice, attempt)
    payment = payments.by_key(session, invoice.account_id, key)
    if payment is None:
        if _paying_on_session(session, invoice, now):
            # The customer is paying it on the Invoices page: look again later.
            enqueue(
                session,
                "collect_invoice",
                {"account_id": invoice.account_id, "invoice_id": invoice.id, "attempt": attempt},
                dedupe_key=f"collect_invoice:{invoice.public_id}:{attempt}:{now.isoformat()}",
                run_at=now + RECHECK_AFTER,
            )
            return
        if invoice.status != "open":
            return  # the customer's payment had succeeded
        method = default_method(session, invoice.account_id)
        if method is None:
            count_failure(session, invoice, attempt, NO_CARD_MESSAGE, authentication=False, now=now)
            return
        payment, _ = payments.open_payment(
            session,
            account_id=invoice.account_id,
            amount_cents=invoice.total_cents,
            method="renewal",
            idempotency_key=key,
            payment_method_id=method.stripe_payment_method_id,
            invoice_id=invoice.id,
        )
        invoice.payment_id = payment.id
        session.add(invoice)
    if payment.status in (*payments.ENDED, *payments.AFTER_SUCCESS):
        return
    payments.charge_off_session(session, payment, purpose="renewal", now=now, invoice_id=invoice.public_id)


def _paying_on_session(session: Session, invoice: Invoice, now: datetime) -> bool:
    """Whether a payment of the invoice the customer started may still charge. One left waiting
    for 3-D Secure longer than RECHECK_AFTER was abandoned: it is cancelled at Stripe (or found to
    have ended) so that the scheduled charge can go ahead; a processing one (a SEPA debit) is
    waited for."""
    previous = session.get(Payment, (invoice.account_id, invoice.payment_id)) if invoice.payment_id else None
    if previous is None or previous.status in (*payments.ENDED, *payments.AFTER_SUCCESS):
        return False
    if previous.status in ("requires_action", "pending") and previous.created_at + RECHECK_AFTER <= now:
        payments.cancel_waiting(session, previous, "Cancelled for the scheduled charge.")
        session.refresh(invoice)
    return previous.status not in (*payments.ENDED, *payments.AFTER_SUCCESS)


def _current(session: Session, account_id: int, invoice_id: int) -> Invoice | None:
    """The invoice, or when it was voided and reissued for less (a plan change), its reissue;
    locked, so that a payment on the Invoices page (which locks it too) and this charge cannot
    both start."""
    invoice = session.get(Invoice, (account_id, invoice_id), populate_existing=True, with_for_update=True)
    if invoice is None or invoice.status != "void":
        return invoice
    return session.exec(
        select(Invoice)
        .where(
            Invoice.account_id == invoice.account_id,
            Invoice.source == invoice.source,
            Invoice.kind == "invoice",
            Invoice.period_end == invoice.period_end,
            Invoice.status == "open",
        )
        .order_by(col(Invoice.id).desc())
        .with_for_update()
    ).first()


def _attempt_of(payment: Payment) -> int | None:
    """The attempt number in a renewal payment's key."""
    attempt = payment.idempotency_key.rsplit(":", 1)[-1]
    return int(attempt) if payment.idempotency_key.startswith("renewal:") and attempt.isdigit() else None


@payments.on_settled("renewal")
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    invoice = session.get(Invoice, (payment.account_id, payment.invoice_id)) if payment.invoice_id is not None else None
    attempt = _attempt_of(payment)
    if invoice is None or attempt is None:
        return
    if payment.status == "succeeded":
        mark_paid(session, invoice, payment, now)
        if invoice.status == "paid":
            invoice.next_collection_at = None
            session.add(invoice)
        return
    count_failure(
        session, invoice, attempt, payment.failure_message, authentication=payment.status == "canceled", now=now
    )


def count_failure(
    session: Session, invoice: Invoice, attempt: int, message: str, *, authentication: bool, now: datetime
) -> None:
    """A failed attempt, counted once however often it is reported: the billing contacts are
    emailed, and the next attempt is scheduled, or after the last the final action."""
    settings = get_settings()
    retry_days = settings.dunning_retry_days
    last = attempt > len(retry_days)
    retry_at = (
        None
        if last
        else now + timedelta(days=retry_days[attempt - 1] - (retry_days[attempt - 2] if attempt > 1 else 0))
    )
    claimed = session.exec(
        update(Invoice)
        .where(
            col(Invoice.account_id) == invoice.account_id,
            col(Invoice.id) == invoice.id,
            col(Invoice.status) == "open",
            col(Invoice.failed_collections) == attempt - 1,
        )
        .values(failed_collections=attempt, next_collection_at=retry_at)
        .returning(col(Invoice.id))
    ).first()
    if claimed is None:
        return
    session.refresh(invoice)
    if retry_at is not None:
        _schedule(session, invoice, attempt + 1, retry_at)
    elif settings.dunning_final_action == "downgrade":
        enqueue(
            session,
            "renewal_unpaid",
            {"account_id": invoice.account_id, "invoice_id": invoice.id},
            dedupe_key=f"renewal_unpaid:{invoice.public_id}",
            run_at=now,
        )
    _email_failure(session, invoice, message, authentication=authentication, retry_at=retry_at)


def _email_failure(
    session: Session, invoice: Invoice, message: str, *, authentication: bool, retry_at: datetime | None
) -> None:
    account = account_of(session, invoice.account_id)
    number, amount = label(invoice, account), format_usd(invoice.total_cents)
    pay = f"{get_settings().public_url}{INVOICES_PATH}"
    if authentication:
        subject = f"Invoice {number} needs you to pay"
        what = (
            f"Your bank asked to authenticate the {amount} charge for invoice {number} of {account.name} "
            f"({account.public_id}), which cannot be done while you are away, so we cancelled that charge and "
            f"nothing was taken.\n\nPay it on the Invoices page, where your bank can ask you to confirm: {pay}\n"
        )
    else:
        subject = f"Payment of invoice {number} failed"
        what = (
            f"We could not charge {amount} for invoice {number} of {account.name} ({account.public_id}) to your "
            f"default payment method: {message}\n\nPay it on the Invoices page: {pay}\n"
        )
    if retry_at is not None:
        then = f"\nOtherwise we will try your default payment method again at {format_datetime(retry_at, account.timezone)}.\n"
    elif get_settings().dunning_final_action == "downgrade" and get_plan(account.plan_code).paid:
        then = "\nThat was our last try: your plan moves to Basic now. The invoice stays due until it is paid.\n"
    else:
        then = "\nThat was our last try: the invoice stays due until it is paid.\n"
    email_billing_contacts(session, invoice.account_id, subject, f"Hello,\n\n{what}{then}")


def is_past_due(invoice: Invoice, timezone: str, now: datetime) -> bool:
    """An open invoice whose charge failed, or whose due date (a day of the account's timezone)
    has passed."""
    if invoice.status != "open":
        return False
    if invoice.failed_collections > 0:
        return True
    tz = zone(timezone)
    return invoice.due_at is not None and invoice.due_at.astimezone(tz).date() < now.astimezone(tz).date()


def past_due(session: Session, account_id: int, now: datetime | None = None) -> bool:
    """Whether the account is past due (the console's header and the Plans page say so)."""
    now = now or utcnow()
    account = account_of(session, account_id)
    open_invoices = session.exec(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.status == "open", Invoice.kind == "invoice")
    )
    return any(is_past_due(invoice, account.timezone, now) for invoice in open_invoices)
