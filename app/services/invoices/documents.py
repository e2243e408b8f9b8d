"""What the Invoices page, the PDF and the email show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import NotFound
from app.models import Invoice, InvoiceLine, OutboxEmail, utcnow
from app.services import invoice_pdf, ledger
from app.services.customers import account_of
from app.services.email import Attachment, billing_recipients, queue_email
from app.services.invoices.collection import is_past_due
from app.services.invoices.issuing import label
from app.services.invoices.payment import balance_covers
from app.services.money import format_usd
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_day

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


# Paid, then the money went back to the payer: what the Invoices page and the PDF say of it.
REVERSED = {
    "refunded": "Refunded: the payment of this invoice was refunded.",
    "disputed": "Disputed: the payer disputed the payment of this invoice with their bank.",
}


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
    # An open invoice the credit balance pays (`pay_from_balance`).
    from_balance: bool = False


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
    """Invoices no longer open (paid, void, refunded, disputed) and credit notes, the latest first."""
    require(actor, Permission.BILLING_VIEW)
    rows = session.exec(
        select(Invoice)
        .where(Invoice.account_id == actor.account_id, col(Invoice.status).in_(("paid", "void", *REVERSED)))
        .order_by(col(Invoice.number).desc())
        .limit(limit)
    )
    return _rows(session, actor.account_id, rows, utcnow())


def _rows(session: Session, account_id: int, invoices, now: datetime) -> list[InvoiceRow]:
    account = account_of(session, account_id)
    balance = ledger.balance_of(session, account_id)

    def day(moment: datetime | None) -> str:
        return format_day(moment, account.timezone) if moment else ""

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
            overdue=is_past_due(invoice, account.timezone, now),
            from_balance=balance_covers(invoice, balance),
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
    lines = list(
        session.exec(
            select(InvoiceLine)
            .where(InvoiceLine.account_id == invoice.account_id, InvoiceLine.invoice_id == invoice.id)
            .order_by(col(InvoiceLine.position))
        )
    )

    def day(moment: datetime) -> str:
        return format_day(moment, account.timezone)

    number = label(invoice, account)
    facts = [("Invoice number", number), ("Invoice date", day(invoice.issued_at))]
    if invoice.credited_invoice_id:
        original = session.get(Invoice, (invoice.account_id, invoice.credited_invoice_id))
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
        paid = total if invoice.status in ("paid", *REVERSED) else 0
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
    if invoice.status in REVERSED:
        notes.append(REVERSED[invoice.status])
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


def email_issued(session: Session, account_id: int, invoice_id: int) -> None:
    """Job "invoice_issued": email the invoice, with its PDF, to the billing email it was issued
    to (the account owners when none was set). Safe to run twice: a message already in the
    outbox for the same recipient and subject is not queued again."""
    invoice = session.get(Invoice, (account_id, invoice_id))
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
        due = format_day(invoice.due_at, account.timezone)
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
