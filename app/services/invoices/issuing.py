"""Issuing invoices and credit notes: numbering, idempotency by key, and what a receipt, a plan
change or a credit note lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import Conflict, ValidationFailed
from app.jobs.queue import enqueue
from app.models import Account, Invoice, InvoiceCounter, InvoiceLine, LedgerEntry, Payment, utcnow
from app.services import tax
from app.services.billing_details import address_lines
from app.services.customers import account_of
from app.services.invoices.periods import period_end_after, period_label, prorate
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.plans import get_plan

NET_DAYS_INVOICE_PRICED = 30
NET_DAYS_CARD = 14


@dataclass(frozen=True)
class LineItem:
    description: str
    amount_cents: int
    quantity: int = 1

    @property
    def unit_amount_cents(self) -> int:
        return self.amount_cents // self.quantity if self.quantity else self.amount_cents


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
    plan_cents: int = 0,
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
    if (found := by_key(session, account_id, idempotency_key)) is not None:
        return found, False
    now = now or utcnow()
    account = account_of(session, account_id)
    settings = billing_settings(session, account_id)
    try:
        with session.begin_nested():
            number = _next_number(session, account_id)
            # Whoever held the counter before us may have issued this very invoice.
            if by_key(session, account_id, idempotency_key) is not None:
                raise _AlreadyIssued
            invoice = Invoice(
                account_id=account_id,
                number=number,
                kind=kind,
                source=source,
                status="draft",
                total_cents=sum(line.amount_cents for line in lines),
                overage_cents=overage_cents,
                plan_cents=plan_cents,
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
                        account_id=account_id,
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
        if (found := by_key(session, account_id, idempotency_key)) is None:
            raise
        return found, False
    enqueue(
        session,
        "invoice_issued",
        {"account_id": invoice.account_id, "invoice_id": invoice.id},
        dedupe_key=f"invoice_issued:{invoice.id}",
    )
    return invoice, True


def by_key(session: Session, account_id: int, key: str) -> Invoice | None:
    return session.exec(select(Invoice).where(Invoice.account_id == account_id, Invoice.idempotency_key == key)).first()


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
    amount_cents: int | None = None,
    now: datetime | None = None,
) -> Invoice | None:
    """Bill a plan or seat change made at `effective_at` for the rest of its billing period
    (the calendar month, UTC), prorated by whole days left (the change day included): the new
    monthly price (seats × seat price) minus the old one, or `amount_cents`, what the change was
    charged (its share of the period's running total). Returns None when the change costs
    nothing or less (a downgrade is not refunded: the lower price applies from the next renewal,
    which `close_period` bills). `change_key` identifies the change (e.g. the id of the audit
    record or of the request), so calling again for the same change issues nothing more. The
    invoice is open: due in 30 days for invoice-priced accounts, 14 days for card accounts.

    For the plan and seats administration: call it in the transaction that changes the plan."""
    old, new = get_plan(from_plan), get_plan(to_plan)
    old_monthly, new_monthly = old.monthly_cents(from_seats), new.monthly_cents(to_seats)
    prorated = prorate(old_monthly, new_monthly, effective_at).amount_cents if amount_cents is None else amount_cents
    if prorated <= 0:
        return None
    end = period_end_after(effective_at)
    period = period_label(effective_at.astimezone(UTC).date(), end)
    new_part = prorate(0, new_monthly, effective_at).amount_cents
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


def reissue_for_less(
    session: Session,
    original: Invoice,
    *,
    less_cents: int,
    plan_cents: int,
    description: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> Invoice:
    """Void an open invoice and issue it again with one more line taking `less_cents` off (a plan
    change that ends time not paid for yet); `plan_cents` is what is left of its plan renewal.
    The usage it billed moves to the new invoice, which is due when the original was. Not a
    credit note: that would leave the original to be paid in full."""
    if original.status != "open" or not 0 < less_cents <= original.total_cents:
        raise Conflict("Only an open invoice can be issued again for less.")
    account = account_of(session, original.account_id)
    lines = [
        LineItem(line.description, line.amount_cents, line.quantity)
        for line in session.exec(
            select(InvoiceLine)
            .where(InvoiceLine.account_id == original.account_id, InvoiceLine.invoice_id == original.id)
            .order_by(col(InvoiceLine.position))
        )
    ]
    lines.append(LineItem(description, -less_cents))
    original.status = "void"
    session.add(original)
    session.flush()
    total = original.total_cents - less_cents
    invoice, _ = issue_invoice(
        session,
        original.account_id,
        source=original.source,
        lines=lines,
        idempotency_key=idempotency_key,
        status="open" if total > 0 else "paid",
        due_at=original.due_at,
        overage_cents=original.overage_cents,
        plan_cents=plan_cents,
        period_start=original.period_start,
        period_end=original.period_end,
        memo=f"Replaces invoice {label(original, account)}, voided: {description}.",
        now=now,
    )
    session.exec(
        update(LedgerEntry)
        .where(col(LedgerEntry.account_id) == original.account_id, col(LedgerEntry.invoice_id) == original.id)
        .values(invoice_id=invoice.id)
    )
    # Its collection carries on where the original's was (collection._current finds it).
    invoice.failed_collections = original.failed_collections
    invoice.next_collection_at = original.next_collection_at if invoice.status == "open" else None
    session.add(invoice)
    session.flush()
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
        select(func.coalesce(func.sum(Invoice.total_cents), 0)).where(
            Invoice.account_id == original.account_id, Invoice.credited_invoice_id == original.id
        )
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


def due_date(session: Session, account_id: int, now: datetime) -> datetime:
    invoice_priced = billing_settings(session, account_id).invoice_priced
    return now + timedelta(days=NET_DAYS_INVOICE_PRICED if invoice_priced else NET_DAYS_CARD)
