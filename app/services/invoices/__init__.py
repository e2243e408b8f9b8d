"""Invoices (seed 003): issued for credit purchases and recharges (paid receipts), for plan and
seat changes, and by the period close (post-paid usage below zero and plan renewals).

Numbers are sequential per account with no gaps and no duplicates: `issue_invoice` takes the
next number from the account's InvoiceCounter row with one UPDATE … RETURNING in the issuing
transaction (the row lock serializes issuers; a rollback gives the number back). Issuing is
idempotent by key. An issued invoice is never edited: only its status (open → paid, open →
void when it is reissued, paid → refunded or disputed when Stripe gives the money back), payment
date and payment change; corrections are credit notes (`issue_credit_note`) or new invoices
(`reissue_for_less`: a plan change that ends time not paid for yet voids the open renewal and
issues it again for less).

Billing periods are calendar months in UTC, like the spend-management days. `close_period`
bills, once per account and period:
- usage: every debit not yet invoiced from before the period's end is listed and marked with
  the invoice's id (LedgerEntry.invoice_id), so it leaves "Usage This Period"; the part paid from
  prepaid credits is shown and subtracted, and only the part below zero (overage) is charged;
- the plan's renewal for the next period (seats × seat price) on paid plans (`plan_cents`, from
  which plan changes in that period are credited once it is paid).

Overage and the ledger: billing overage does not touch the balance, which stays below zero (the
credit line stays in use) until the invoice is paid. Paying it posts an `invoice_applied` ledger
credit of the invoice's overage, which brings the balance back. So that usage is never charged
twice, a period's overage is the debt at its end minus the overage already invoiced and not yet
applied at that moment.

Invoice-priced accounts get open invoices due in 30 days (net 30), never charged off-session;
card accounts get them due in 14 days, and the monthly close's invoice (renewals, overage) is
charged off-session to the default payment method at once (job "close_period" starts it), with
dunning (`collection`); they
can also pay an open invoice from the Invoices page with a saved card (`pay_invoice`) or from
their credit balance (`pay_from_balance`: an `invoice_applied` debit, "Applied credit balance to
invoice" in Balance History). An open
invoice whose charge failed or whose due date has passed makes the account past due. Invoices
with nothing to pay are issued paid. Every issued invoice is emailed with its PDF (job
"invoice_issued"). Callers commit.

Modules by job: `periods` (the calendar months, proration by day), `issuing` (numbers, receipts, plan changes,
credit notes), `period_close` (the monthly bill and its job), `collection` (charging it
off-session, with dunning; registers what a settled "renewal" payment means), `payment` (paying
an open invoice by card or from the balance; registers what a settled "invoice" payment means) and `documents` (the Invoices page's rows, the
PDF and the email)."""

from app.services.invoices.collection import collect, is_past_due, past_due
from app.services.invoices.collection import start as start_collection
from app.services.invoices.documents import (
    SELLER,
    SOURCE_LABELS,
    InvoiceRow,
    document,
    email_issued,
    history,
    owned,
    payments_due,
    pdf_filename,
    pdf_for,
    render_pdf,
)
from app.services.invoices.issuing import (
    NET_DAYS_CARD,
    NET_DAYS_INVOICE_PRICED,
    LineItem,
    due_date,
    invoice_number,
    issue_credit_note,
    issue_for_plan_change,
    issue_invoice,
    issue_receipt,
    label,
    reissue_for_less,
)
from app.services.invoices.payment import (
    BALANCE_APPLIED,
    INVOICE_PAYMENTS,
    PayResult,
    balance_covers,
    finish_invoice_payment,
    mark_paid,
    overage_bought,
    pay_from_balance,
    pay_invoice,
    payment_reversed,
)
from app.services.invoices.period_close import (
    PeriodBill,
    close_period,
    close_periods,
    period_bill,
    renewal_lines,
    schedule_period_close,
)
from app.services.invoices.periods import Proration, billing_period, period_end_after, period_label, prorate

__all__ = [
    "BALANCE_APPLIED",
    "INVOICE_PAYMENTS",
    "NET_DAYS_CARD",
    "NET_DAYS_INVOICE_PRICED",
    "SELLER",
    "SOURCE_LABELS",
    "InvoiceRow",
    "LineItem",
    "PayResult",
    "PeriodBill",
    "Proration",
    "billing_period",
    "close_period",
    "collect",
    "close_periods",
    "document",
    "due_date",
    "email_issued",
    "finish_invoice_payment",
    "history",
    "invoice_number",
    "is_past_due",
    "issue_credit_note",
    "issue_for_plan_change",
    "issue_invoice",
    "issue_receipt",
    "label",
    "balance_covers",
    "mark_paid",
    "owned",
    "overage_bought",
    "past_due",
    "pay_from_balance",
    "pay_invoice",
    "payment_reversed",
    "payments_due",
    "pdf_filename",
    "pdf_for",
    "period_bill",
    "period_end_after",
    "period_label",
    "prorate",
    "reissue_for_less",
    "render_pdf",
    "renewal_lines",
    "schedule_period_close",
    "start_collection",
]
