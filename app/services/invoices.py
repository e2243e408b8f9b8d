"""Invoices (seed 003): issued for credit purchases and recharges (paid receipts), for plan and
seat changes, and by the period close (post-paid usage below zero and plan renewals).

Numbers are sequential per account with no gaps and no duplicates: `_issue` takes the next
number from the account's InvoiceCounter row with one UPDATE … RETURNING in the issuing
transaction (the row lock serializes issuers; a rollback gives the number back). Issuing is
idempotent by key. An issued invoice is never edited: only its status (open → paid), payment
date and payment change; corrections are credit notes (`issue_credit_note`) or new invoices.

Billing periods are calendar months in UTC, like the spend-management days. `close_period`
bills, once per account and period:
- usage: every debit not yet invoiced from before the period's end is listed and marked with
  the invoice's id (LedgerEntry.invoice_id), so it leaves "Usage This Period"; the part paid from
  prepaid credits is shown and subtracted, and only the part below zero (overage) is charged;
- the plan's renewal for the next period (seats × seat price) on paid plans.

Overage and the ledger: billing overage does not touch the balance, which stays below zero (the
credit line stays in use) until the invoice is paid. Paying it posts an `invoice_applied` ledger
credit of the invoice's overage, which brings the balance back. So that usage is never charged
twice, a period's overage is the debt at its end minus the overage already invoiced and not yet
applied at that moment.

Invoice-priced accounts get open invoices due in 30 days (net 30); card accounts get them due in
14 days and pay them from the Invoices page with a saved card (`pay_invoice`); nothing charges
a card without the customer's action. Invoices with
nothing to pay are issued paid. Every issued invoice is emailed with its PDF (job
"invoice_issued"). Callers commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import Conflict, NotFound, ValidationFailed
from app.jobs.queue import enqueue
from app.models import (
    Account,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    LedgerEntry,
    OutboxEmail,
    Payment,
    PaymentMethod,
    utcnow,
)
from app.services import audit, invoice_pdf, ledger, payments, tax
from app.services.billing_details import address_lines
from app.services.customers import account_id_of, account_of
from app.services.email import Attachment, billing_recipients, queue_email
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.product_catalogue import monthly_charges
from app.services.team import seat_limit
from app.services.timefmt import format_date, zone

log = logging.getLogger("ledgerdesk.invoices")

NET_DAYS_INVOICE_PRICED = 30
NET_DAYS_CARD = 14
# The operator that issues the invoices.
SELLER = (
    "Ledgerdesk Inc.",
    "548 Market Street",
    "San Francisco, CA 94104",
    "United States",
    "billing@ledgerdesk.local",
)
SOURCE_LABELS = {
    "purchase": "Usage credits",
    "auto_recharge": "Auto recharge",
    "period_close": "Monthly invoice",
    "plan_change": "Plan change",
    "product": "Product sign-up",
    "credit_note": "Credit note",
}


@dataclass(frozen=True)
class LineItem:
    description: str
    amount_cents: int
    quantity: int = 1

    @property
    def unit_amount_cents(self) -> int:
        return self.amount_cents // self.quantity if self.quantity else self.amount_cents


@dataclass(frozen=True)
class PayResult:
    """status: succeeded | requires_action | processing | failed. With requires_action the page
    passes client_secret to Stripe.js, then calls finish_invoice_payment."""

    status: str
    invoice_id: str
    amount_cents: int
    payment_intent_id: str = ""
    client_secret: str = ""
    message: str = ""


def _id(row_id: int | None) -> int:
    """A flushed row's id."""
    if row_id is None:
        raise ValueError("the row has not been flushed")
    return row_id


class _AlreadyIssued(Exception):
    pass


def invoice_number(account: Account, number: int) -> str:
    """ "7KQ2M9XW3B-0001": the account's id without its prefix, then the sequence number."""
    return f"{account.public_id.removeprefix('acct_')}-{number:04d}"


def label(invoice: Invoice, account: Account) -> str:
    return invoice_number(account, invoice.number)


# Issuing


def issue_invoice(
    session: Session,
    account_id: int,
    *,
    source: str,
    lines: Sequence[LineItem],
    idempotency_key: str,
    status: str,
    due_at: datetime | None = None,
    payment_id: int | None = None,
    overage_cents: int = 0,
    period_start: date | None = None,
    period_end: date | None = None,
    kind: str = "invoice",
    credited_invoice_id: int | None = None,
    memo: str = "",
    now: datetime | None = None,
) -> tuple[Invoice, bool]:
    """Issue an invoice (or return the one issued before under `idempotency_key`) and whether it
    is new. The buyer's address, PO number, billing email and tax registrations are copied onto
    it. `status` is "open" or "paid" (paid now, by `payment_id` if given)."""
    if status not in ("open", "paid"):
        raise ValidationFailed("An invoice is issued open or paid.")
    if not lines:
        raise ValidationFailed("An invoice needs at least one line.")
    if (found := _by_key(session, account_id, idempotency_key)) is not None:
        return found, False
    now = now or utcnow()
    account = account_of(session, account_id)
    if account is None:
        raise NotFound("No such account.")
    settings = billing_settings(session, account_id)
    try:
        with session.begin_nested():
            number = _next_number(session, account_id)
            # Whoever held the counter before us may have issued this very invoice.
            if _by_key(session, account_id, idempotency_key) is not None:
                raise _AlreadyIssued
            invoice = Invoice(
                account_id=account_id,
                number=number,
                kind=kind,
                source=source,
                status="draft",
                total_cents=sum(line.amount_cents for line in lines),
                overage_cents=overage_cents,
                issued_at=now,
                period_start=period_start,
                period_end=period_end,
                idempotency_key=idempotency_key,
                credited_invoice_id=credited_invoice_id,
                payment_id=payment_id,
                bill_to_name=settings.invoice_company_name or account.name,
                bill_to_address="\n".join(address_lines(settings, account.name)[1:]),
                po_number=settings.invoice_po_number,
                billing_email=settings.billing_email,
                tax_registrations="\n".join(tax.printed(session, account_id)),
                memo=memo[:500],
            )
            session.add(invoice)
            session.flush()
            for position, line in enumerate(lines, start=1):
                session.add(
                    InvoiceLine(
                        invoice_id=_id(invoice.id),
                        position=position,
                        description=line.description[:300],
                        quantity=line.quantity,
                        unit_amount_cents=line.unit_amount_cents,
                        amount_cents=line.amount_cents,
                    )
                )
            # Finalized in the same transaction: a draft is never seen by anyone else.
            invoice.status = status
            invoice.due_at = due_at if status == "open" else None
            invoice.paid_at = now if status == "paid" else None
            session.add(invoice)
            session.flush()
    except (_AlreadyIssued, IntegrityError):
        if (found := _by_key(session, account_id, idempotency_key)) is None:
            raise
        return found, False
    enqueue(session, "invoice_issued", {"invoice_id": invoice.id}, dedupe_key=f"invoice_issued:{invoice.id}")
    return invoice, True


def _by_key(session: Session, account_id: int, key: str) -> Invoice | None:
    invoice = session.exec(select(Invoice).where(Invoice.idempotency_key == key)).first()
    if invoice is not None and invoice.account_id != account_id:
        raise Conflict("This idempotency key was already used by another account.")
    return invoice


def _next_number(session: Session, account_id: int) -> int:
    """The next number; the row stays locked until the issuing transaction ends."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.exec(
        insert(InvoiceCounter)
        .values(account_id=account_id, next_number=1)
        .on_conflict_do_nothing(index_elements=["account_id"])
    )
    taken = session.exec(
        update(InvoiceCounter)
        .where(col(InvoiceCounter.account_id) == account_id)
        .values(next_number=InvoiceCounter.next_number + 1)
        .returning(col(InvoiceCounter.next_number))
    ).one()
    return taken[0] - 1


def issue_receipt(session: Session, payment: Payment, now: datetime | None = None) -> Invoice:
    """The paid invoice of a credit purchase or auto recharge that succeeded; once per payment."""
    source = "auto_recharge" if payment.method == "auto_recharge" else "purchase"
    description = "Usage credits (auto recharge)" if source == "auto_recharge" else "Usage credits"
    invoice, _ = issue_invoice(
        session,
        payment.account_id,
        source=source,
        lines=[LineItem(description, payment.amount_cents)],
        idempotency_key=f"receipt:{payment.public_id}",
        status="paid",
        payment_id=payment.id,
        now=now,
    )
    return invoice


def issue_for_plan_change(
    session: Session,
    account_id: int,
    *,
    from_plan: str,
    to_plan: str,
    from_seats: int,
    to_seats: int,
    effective_at: datetime,
    change_key: str,
    now: datetime | None = None,
) -> Invoice | None:
    """Bill a plan or seat change made at `effective_at` for the rest of its billing period
    (the calendar month, UTC), prorated by whole days left (the change day included): the new
    monthly price (seats × seat price) minus the old one. Returns None when the change costs
    nothing or less (a downgrade is not refunded: the lower price applies from the next renewal,
    which `close_period` bills). `change_key` identifies the change (e.g. the id of the audit
    record or of the request), so calling again for the same change issues nothing more. The
    invoice is open: due in 30 days for invoice-priced accounts, 14 days for card accounts.

    For the plan and seats administration: call it in the transaction that changes the plan."""
    old, new = get_plan(from_plan), get_plan(to_plan)
    start = _period_start(effective_at)
    end = _next_month(start)
    days_total = (end - start).days
    days_left = (end - effective_at.astimezone(UTC).date()).days
    old_monthly, new_monthly = old.seat_price_cents * from_seats, new.seat_price_cents * to_seats
    prorated = (new_monthly - old_monthly) * days_left // days_total
    if prorated <= 0:
        return None
    period = period_label(effective_at.astimezone(UTC).date(), end)
    new_part = new_monthly * days_left // days_total
    seats_price = f"{to_seats} seats × {format_usd(new.seat_price_cents)}"
    lines = [LineItem(f"{new.name} plan, {seats_price} ({period}, prorated)", new_part)]
    if old_monthly:
        # The rest of the difference, so the lines add up to it exactly.
        lines.append(LineItem(f"Unused time on {old.name} plan, {from_seats} seats ({period})", prorated - new_part))
    invoice, _ = issue_invoice(
        session,
        account_id,
        source="plan_change",
        lines=lines,
        idempotency_key=f"plan:{account_id}:{change_key}",
        status="open",
        due_at=due_date(session, account_id, now or utcnow()),
        period_start=effective_at.astimezone(UTC).date(),
        period_end=end,
        now=now,
    )
    return invoice


def issue_credit_note(
    session: Session,
    original: Invoice,
    *,
    amount_cents: int,
    reason: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> Invoice:
    """A credit note against an issued invoice: a new document with a negative total that
    references the original (which stays as it was). At most what is left of the original after
    earlier credit notes. Moving the money back (a refund, a ledger adjustment) is the caller's."""
    if original.kind != "invoice" or original.status not in ("open", "paid"):
        raise Conflict("Only an issued invoice can be credited.")
    credited = -session.exec(
        select(func.coalesce(func.sum(Invoice.total_cents), 0)).where(Invoice.credited_invoice_id == original.id)
    ).one()
    if not 0 < amount_cents <= original.total_cents - credited:
        raise ValidationFailed("A credit note is for more than zero and at most what is left of the invoice.")
    account = account_of(session, original.account_id)
    invoice, _ = issue_invoice(
        session,
        original.account_id,
        source="credit_note",
        kind="credit_note",
        lines=[LineItem(f"Credit for invoice {label(original, account)}: {reason}", -amount_cents)],
        idempotency_key=idempotency_key,
        status="paid",
        credited_invoice_id=original.id,
        memo=reason,
        now=now,
    )
    return invoice


# Period close


def period_end_after(moment: datetime) -> date:
    """The end (exclusive, a first of the month) of the UTC month `moment` is in."""
    return _next_month(_period_start(moment))


@dataclass(frozen=True)
class PeriodBill:
    """What the close of the period ending `period_end` bills: the lines, the overage among them,
    and the newest uninvoiced usage entry it covers (None when there was no usage)."""

    lines: list[LineItem]
    overage_cents: int
    last_usage_id: int | None

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)


def _uninvoiced_usage(account_id: int, boundary: datetime) -> tuple:
    return (
        LedgerEntry.account_id == account_id,
        LedgerEntry.amount_cents < 0,
        col(LedgerEntry.invoice_id).is_(None),
        LedgerEntry.created_at < boundary,
    )


def period_bill(session: Session, account: Account, period_end: date) -> PeriodBill:
    """The lines `close_period` issues for the period ending at `period_end`; also the preview of
    the next invoice (with a future `period_end`: the usage so far)."""
    boundary = datetime.combine(period_end, time(), tzinfo=UTC)
    used, last_id = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0), func.max(LedgerEntry.id)).where(
            *_uninvoiced_usage(account_id_of(account), boundary)
        )
    ).one()
    usage_cents = -int(used)
    new_debt = _debt_at(session, account_id_of(account), boundary) - _unapplied_overage(
        session, account_id_of(account), boundary
    )
    overage = min(max(new_debt, 0), usage_cents)
    lines: list[LineItem] = []
    if usage_cents:
        lines.append(LineItem(f"Usage through {format_date(period_end - timedelta(days=1))}", usage_cents))
        if usage_cents > overage:
            lines.append(LineItem("Paid from your usage credits", overage - usage_cents))
    lines.extend(renewal_lines(session, account, period_end))
    return PeriodBill(lines, overage, last_id)


def renewal_lines(session: Session, account: Account, period_end: date) -> list[LineItem]:
    """Everything that renews for the month starting at `period_end`: the plan's seats and the
    paid product plans."""
    lines: list[LineItem] = []
    plan = get_plan(account.plan_code)
    renewal = period_label(period_end, _next_month(period_end))
    if plan.seat_price_cents > 0:
        seats = seat_limit(plan, account.seats_purchased) or 1
        lines.append(LineItem(f"{plan.name} plan seats, {renewal}", plan.seat_price_cents * seats, quantity=seats))
    for description, cents in monthly_charges(session, account_id_of(account)):
        lines.append(LineItem(f"{description}, {renewal}", cents))
    return lines


def close_period(session: Session, account_id: int, period_end: date, now: datetime | None = None) -> Invoice | None:
    """Bill the period that ends at midnight UTC starting `period_end` (the first day of the
    next month): uninvoiced usage from before then, of which the part below zero (overage) is
    charged, and the plan's renewal for the next month. Idempotent by (account, period): running
    it again returns the same invoice and bills nothing more. None when there is nothing to bill."""
    key = f"period:{account_id}:{period_end.isoformat()}"
    if (found := _by_key(session, account_id, key)) is not None:
        return found
    now = now or utcnow()
    account = account_of(session, account_id)
    if account is None:
        raise NotFound("No such account.")
    bill = period_bill(session, account, period_end)
    if not bill.lines:
        return None
    invoice, created = issue_invoice(
        session,
        account_id,
        source="period_close",
        lines=bill.lines,
        idempotency_key=key,
        status="open" if bill.total_cents > 0 else "paid",
        due_at=due_date(session, account_id, now),
        overage_cents=bill.overage_cents,
        period_start=_previous_month(period_end),
        period_end=period_end,
        now=now,
    )
    if created and bill.last_usage_id is not None:
        boundary = datetime.combine(period_end, time(), tzinfo=UTC)
        session.exec(
            update(LedgerEntry)
            .where(*_uninvoiced_usage(account_id, boundary), col(LedgerEntry.id) <= bill.last_usage_id)
            .values(invoice_id=invoice.id)
        )
        session.flush()
    return invoice


def _debt_at(session: Session, account_id: int, boundary: datetime) -> int:
    """How far below zero the balance was at `boundary` (0 when it was not)."""
    balance = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.created_at < boundary
        )
    ).one()
    return max(-int(balance), 0)


def _unapplied_overage(session: Session, account_id: int, boundary: datetime) -> int:
    """Overage invoiced before `boundary` whose payment had not reached the ledger by then."""
    billed = session.exec(
        select(func.coalesce(func.sum(Invoice.overage_cents), 0)).where(
            Invoice.account_id == account_id, Invoice.status != "void", Invoice.issued_at < boundary
        )
    ).one()
    applied = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id,
            LedgerEntry.source == "invoice_applied",
            LedgerEntry.created_at < boundary,
        )
    ).one()
    return int(billed) - int(applied)


def schedule_period_close(session: Session, now: datetime | None = None) -> None:
    """Make sure job "close_periods" runs when the current UTC month ends. That job closes the
    month for every account and schedules the next one, so calling this once keeps it going."""
    period_end = period_end_after(now or utcnow())
    enqueue(
        session,
        "close_periods",
        {"period_end": period_end.isoformat()},
        dedupe_key=f"close_periods:{period_end.isoformat()}",
        run_at=datetime.combine(period_end, time(), tzinfo=UTC),
    )


def close_periods(session: Session, period_end: date) -> None:
    """Job "close_periods": one job "close_period" per account (each its own transaction), then
    the next month's run."""
    boundary = datetime.combine(period_end, time(), tzinfo=UTC)
    for account_id in session.exec(select(Account.id).order_by(col(Account.id))):
        enqueue(
            session,
            "close_period",
            {"account_id": account_id, "period_end": period_end.isoformat()},
            dedupe_key=f"close_period:{account_id}:{period_end.isoformat()}",
            run_at=boundary,
        )
    schedule_period_close(session, boundary)


def due_date(session: Session, account_id: int, now: datetime) -> datetime:
    invoice_priced = billing_settings(session, account_id).invoice_priced
    return now + timedelta(days=NET_DAYS_INVOICE_PRICED if invoice_priced else NET_DAYS_CARD)


def _period_start(moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day.replace(day=1)


def _next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


def period_label(start: date, end: date) -> str:
    """ "Nov 1 – Nov 30, 2026" for the days from start up to (not including) end."""
    last = end - timedelta(days=1)
    return f"{start:%b} {start.day} – {format_date(last)}"


# Paying an open invoice


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
    replayed = payments.by_key(session, key)
    if replayed is not None:
        return _result(invoice, replayed, payments.refresh(session, replayed))
    if invoice.status == "paid":
        raise Conflict("This invoice is already paid.")
    if invoice.status != "open" or invoice.total_cents <= 0:
        raise Conflict("Only open invoices can be paid.")
    method = session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == actor.account_id,
            PaymentMethod.stripe_payment_method_id == payment_method_id,
        )
    ).first()
    if method is None:
        raise ValidationFailed("Select one of your saved cards.", field="payment_method")
    if _attempt_under_way(session, invoice):
        if invoice.status == "paid":
            return _result(invoice, _paid_by(session, invoice))
        raise Conflict("A payment of this invoice is already processing.")
    payment, _ = payments.open_payment(
        session,
        account_id=actor.account_id,
        amount_cents=invoice.total_cents,
        method="invoice",
        idempotency_key=key,
        payment_method_id=method.stripe_payment_method_id,
        created_by_user_id=actor.user_id,
        invoice_id=invoice.id,
    )
    invoice.payment_id = payment.id
    session.add(invoice)
    secret = payments.charge(
        session,
        payment,
        idempotency_key=f"invoice:{invoice.public_id}:{payment.public_id}",
        metadata=payments.metadata(payment, "invoice", invoice_id=invoice.public_id),
    )
    audit.record(
        session,
        actor,
        "payment.invoice",
        f"Paid invoice {label(invoice, account_of(session, actor.account_id))} ({format_usd(invoice.total_cents)}): "
        f"{payment.status}",
    )
    return _result(invoice, payment, secret)


def finish_invoice_payment(session: Session, actor: Actor, payment_intent_id: str) -> PayResult:
    """After the browser's 3-D Secure step: ask Stripe how the intent ended."""
    require(actor, Permission.BILLING_MANAGE)
    payment = payments.by_intent(session, actor.account_id, payment_intent_id, method="invoice")
    invoice = session.get(Invoice, payment.invoice_id) if payment is not None and payment.invoice_id else None
    if payment is None or invoice is None:
        raise NotFound("No such payment.")
    return _result(invoice, payment, payments.refresh(session, payment))


def _attempt_under_way(session: Session, invoice: Invoice) -> bool:
    """Whether the invoice's latest payment attempt may still charge. An attempt left waiting
    for 3-D Secure is cancelled at Stripe (or found to have succeeded) so that a new one can start."""
    previous = session.get(Payment, invoice.payment_id) if invoice.payment_id else None
    if previous is None or previous.status in payments.ENDED:
        return False
    if previous.status == "requires_action" and previous.stripe_payment_intent_id:
        payments.cancel_waiting(session, previous, "Cancelled for a new payment.")
        return previous.status not in ("failed", "canceled")
    return True


@payments.on_settled("invoice")
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    """A succeeded payment marks its invoice paid, once, whether the request or Stripe's webhook
    saw it first."""
    if payment.status == "succeeded" and payment.invoice_id is not None:
        invoice = session.get(Invoice, payment.invoice_id)
        if invoice is not None:
            mark_paid(session, invoice, payment)


def _paid_by(session: Session, invoice: Invoice) -> Payment:
    payment = session.get(Payment, invoice.payment_id) if invoice.payment_id else None
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


# What the Invoices page, the PDF and the email show


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    number: str
    kind: str
    status: str
    description: str
    invoice_date: str
    due_date: str
    payment_date: str
    amount: str
    overdue: bool


def payments_due(session: Session, actor: Actor, now: datetime | None = None) -> list[InvoiceRow]:
    """Open invoices, the earliest due first."""
    require(actor, Permission.BILLING_VIEW)
    rows = session.exec(
        select(Invoice)
        .where(Invoice.account_id == actor.account_id, Invoice.status == "open")
        .order_by(col(Invoice.due_at), col(Invoice.number))
    )
    return _rows(session, actor.account_id, rows, now or utcnow())


def history(session: Session, actor: Actor, limit: int = 100) -> list[InvoiceRow]:
    """Paid and void invoices and credit notes, the latest first."""
    require(actor, Permission.BILLING_VIEW)
    rows = session.exec(
        select(Invoice)
        .where(Invoice.account_id == actor.account_id, col(Invoice.status).in_(("paid", "void")))
        .order_by(col(Invoice.number).desc())
        .limit(limit)
    )
    return _rows(session, actor.account_id, rows, utcnow())


def _rows(session: Session, account_id: int, invoices, now: datetime) -> list[InvoiceRow]:
    account = account_of(session, account_id)
    tz = zone(account.timezone)

    def day(moment: datetime | None) -> str:
        return format_date(moment.astimezone(tz).date()) if moment else ""

    return [
        InvoiceRow(
            id=invoice.public_id,
            number=label(invoice, account),
            kind=invoice.kind,
            status=invoice.status,
            description=SOURCE_LABELS.get(invoice.source, invoice.source),
            invoice_date=day(invoice.issued_at),
            due_date=day(invoice.due_at),
            payment_date=day(invoice.paid_at),
            amount=format_usd(invoice.total_cents),
            overdue=invoice.status == "open"
            and invoice.due_at is not None
            and invoice.due_at.astimezone(tz).date() < now.astimezone(tz).date(),
        )
        for invoice in invoices
    ]


def owned(session: Session, actor: Actor, invoice_id: str) -> Invoice:
    """One of the account's invoices; any other id (another account's too) is not found."""
    require(actor, Permission.BILLING_VIEW)
    invoice = session.exec(
        select(Invoice).where(Invoice.account_id == actor.account_id, Invoice.public_id == invoice_id)
    ).first()
    if invoice is None:
        raise NotFound("No such invoice.")
    return invoice


def pdf_for(session: Session, actor: Actor, invoice_id: str) -> tuple[str, bytes]:
    """The file name and PDF of one of the account's invoices."""
    invoice = owned(session, actor, invoice_id)
    return pdf_filename(session, invoice), render_pdf(session, invoice)


def pdf_filename(session: Session, invoice: Invoice) -> str:
    kind = "credit-note" if invoice.kind == "credit_note" else "invoice"
    return f"{kind}-{label(invoice, account_of(session, invoice.account_id))}.pdf"


def render_pdf(session: Session, invoice: Invoice) -> bytes:
    return invoice_pdf.render(document(session, invoice))


def document(session: Session, invoice: Invoice) -> invoice_pdf.InvoiceDocument:
    """Everything the PDF prints, from the invoice as issued (its frozen buyer details)."""
    account = account_of(session, invoice.account_id)
    tz = zone(account.timezone)
    lines = list(
        session.exec(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(col(InvoiceLine.position))
        )
    )

    def day(moment: datetime) -> str:
        return format_date(moment.astimezone(tz).date())

    number = label(invoice, account)
    facts = [("Invoice number", number), ("Invoice date", day(invoice.issued_at))]
    if invoice.credited_invoice_id:
        original = session.get(Invoice, invoice.credited_invoice_id)
        if original is not None:
            facts.append(("Credits invoice", label(original, account)))
    if invoice.due_at and invoice.status == "open":
        facts.append(("Due date", day(invoice.due_at)))
    if invoice.paid_at:
        facts.append(("Payment date", day(invoice.paid_at)))
    if invoice.po_number:
        facts.append(("PO number", invoice.po_number))
    facts.append(("Account", f"{account.name} ({account.public_id})"))
    buyer = [invoice.bill_to_name, *filter(None, invoice.bill_to_address.split("\n"))]
    if invoice.billing_email:
        buyer.append(invoice.billing_email)
    total = invoice.total_cents
    totals = [("Total", format_usd(total))]
    if invoice.kind == "invoice":
        paid = total if invoice.status == "paid" else 0
        totals += [("Amount paid", format_usd(paid)), ("Amount due", format_usd(total - paid))]
    notes = []
    if invoice.status == "open":
        notes.append("Pay this invoice on the Invoices page of your console, with a saved card.")
    if invoice.overage_cents:
        notes.append(
            f"Includes {format_usd(invoice.overage_cents)} of usage beyond your credits (overage); paying it "
            "restores your balance by that amount."
        )
    if invoice.status == "void":
        notes.append("This invoice is void.")
    return invoice_pdf.InvoiceDocument(
        title="Credit note" if invoice.kind == "credit_note" else "Invoice",
        number=number,
        facts=facts,
        seller=list(SELLER),
        buyer=buyer,
        tax_registrations=[line for line in invoice.tax_registrations.split("\n") if line],
        lines=[
            invoice_pdf.PdfLine(
                description=line.description,
                quantity=str(line.quantity),
                unit_price=format_usd(line.unit_amount_cents),
                amount=format_usd(line.amount_cents),
            )
            for line in lines
        ],
        totals=totals,
        notes=notes,
    )


def email_issued(session: Session, invoice_id: int) -> None:
    """Job "invoice_issued": email the invoice, with its PDF, to the billing email it was issued
    to (the account owners when none was set). Safe to run twice: a message already in the
    outbox for the same recipient and subject is not queued again."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        return
    account = account_of(session, invoice.account_id)
    number = label(invoice, account)
    noun = "Credit note" if invoice.kind == "credit_note" else "Invoice"
    subject = f"{noun} {number} from {SELLER[0]}"
    recipients = [invoice.billing_email] if invoice.billing_email else billing_recipients(session, invoice.account_id)
    if not recipients:
        return
    attachment = Attachment(pdf_filename(session, invoice), "application/pdf", render_pdf(session, invoice))
    if invoice.status == "open" and invoice.due_at:
        due = format_date(invoice.due_at.astimezone(zone(account.timezone)).date())
        state = f"The amount of {format_usd(invoice.total_cents)} is due on {due}."
    else:
        state = f"It is paid: {format_usd(invoice.total_cents)}, nothing is due."
    body = (
        f"Hello,\n\n{noun} {number} for {account.name} ({account.public_id}) is attached. {state}\n\n"
        f"All your invoices: {get_settings().public_url}/billing/invoices\n"
    )
    for to in recipients:
        sent = session.exec(
            select(OutboxEmail.id).where(
                OutboxEmail.account_id == account.id, OutboxEmail.to_address == to, OutboxEmail.subject == subject
            )
        ).first()
        if sent is None:
            queue_email(session, to=to, subject=subject, body=body, account_id=account.id, attachment=attachment)
