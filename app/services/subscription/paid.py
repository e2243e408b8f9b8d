"""What was paid for a billing period's plan, so that a plan or seat change never gives back
more than that: the period's renewal once its invoice is paid, plus the changes' charges that
succeeded, less what changes already credited to the balance. Unpaid time is not credited: the
rest of a credit is taken off the period's open renewal invoice instead (voided and reissued).
When Stripe later gives some of that money back (a refund, a dispute), the credits it no longer
covers are what `credits_no_longer_paid` says to take back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import Conflict
from app.models import Invoice, Payment, PlanChange
from app.services import payments
from app.services.invoices import INVOICE_PAYMENTS, billing_period
from app.services.subscription.catalogue import applied_changes

KEPT = ("succeeded", "partially_refunded", "refunded", "dispute_won")


@dataclass(frozen=True)
class PeriodMoney:
    # The plan's renewal for the period if its invoice is paid, plus the changes' charges that
    # succeeded.
    paid_cents: int
    # What changes in the period credited to the balance.
    credited_cents: int
    # The period's renewal invoice while it is unpaid.
    open_renewal: Invoice | None

    @property
    def creditable_cents(self) -> int:
        return max(self.paid_cents - self.credited_cents, 0)


@dataclass(frozen=True)
class CreditSplit:
    """How a change's credit is given back."""

    # Taken off the open renewal invoice, which is reissued for less.
    invoice_cents: int
    # Credited to the balance.
    credited_cents: int
    # Neither: time that was not paid for, with no invoice to take it off.
    kept_cents: int


def renewal_invoice(session: Session, account_id: int, moment: datetime) -> Invoice | None:
    """The invoice that renewed the plan for `moment`'s period (issued by the previous period's
    close, or its reissue), unless voided."""
    start, _ = billing_period(moment)
    return session.exec(
        select(Invoice)
        .where(
            Invoice.account_id == account_id,
            Invoice.source == "period_close",
            Invoice.kind == "invoice",
            Invoice.period_end == start,
            col(Invoice.status).in_(("open", "paid")),
        )
        .order_by(col(Invoice.id).desc())
    ).first()


def period_money(session: Session, account_id: int, moment: datetime, without: Payment | None = None) -> PeriodMoney:
    """`without`: leave that payment's money out (what the rest of the period paid)."""
    changes = applied_changes(session, account_id, moment)
    # A charge that was refunded, or is disputed and not won, counts for what the account kept.
    query = select(func.coalesce(func.sum(Payment.amount_cents - Payment.refunded_cents), 0)).where(
        Payment.account_id == account_id,
        col(Payment.plan_change_id).in_([change.id for change in changes]),
        col(Payment.status).in_(KEPT),
    )
    if without is not None:
        query = query.where(Payment.id != without.id)
    charged = session.exec(query).one()
    renewal = renewal_invoice(session, account_id, moment)
    renewed = 0
    if renewal is not None and renewal.status == "paid" and (without is None or renewal.payment_id != without.id):
        paid_by = session.get(Payment, (renewal.account_id, renewal.payment_id)) if renewal.payment_id else None
        renewed = renewal_paid(renewal, paid_by.refunded_cents if paid_by is not None else 0)
    return PeriodMoney(
        paid_cents=int(charged) + renewed,
        credited_cents=sum(change.credited_cents for change in changes),
        open_renewal=renewal if renewal is not None and renewal.status == "open" else None,
    )


def renewal_paid(renewal: Invoice, lost_cents: int) -> int:
    """What a paid renewal invoice still pays for the plan once `lost_cents` of its payment went
    back to the payer: the loss comes off the overage it paid first (its credits are taken back
    with it), then off the plan."""
    lost_plan = max(lost_cents - renewal.overage_cents, 0)
    return max(min(renewal.plan_cents, renewal.total_cents - renewal.overage_cents - lost_plan), 0)


def credits_no_longer_paid(session: Session, payment: Payment, lost_before: int, lost_after: int) -> int:
    """The plan-change credits that a renewal invoice's payment or a "plan" payment stops paying for
    when the money it lost to refunds and disputes grows from `lost_before` to `lost_after`
    cents: credits given back in its period beyond what the period's other money and what is
    left of this payment pay for."""
    moment, kept = _paid_for_plan(session, payment)
    if moment is None:
        return 0
    money = period_money(session, payment.account_id, moment, without=payment)
    beyond = money.credited_cents - money.paid_cents
    return max(beyond - kept(lost_after), 0) - max(beyond - kept(lost_before), 0)


def _paid_for_plan(session: Session, payment: Payment) -> tuple[datetime | None, Callable[[int], int]]:
    """The period a payment paid plan time for, and what it pays for it once it lost some money."""
    if payment.method == "plan" and payment.plan_change_id is not None:
        change = session.get(PlanChange, (payment.account_id, payment.plan_change_id))
        if change is not None and change.status == "applied":
            return change.effective_at, lambda lost: max(payment.amount_cents - lost, 0)
    if payment.method in INVOICE_PAYMENTS and payment.invoice_id is not None:
        invoice = session.get(Invoice, (payment.account_id, payment.invoice_id))
        if invoice is not None and invoice.source == "period_close" and invoice.plan_cents and invoice.period_end:
            return datetime.combine(invoice.period_end, time(), tzinfo=UTC), lambda lost: renewal_paid(invoice, lost)
    return None, lambda lost: 0


def split_credit(money: PeriodMoney, credit_cents: int) -> CreditSplit:
    """A credit of `credit_cents` (> 0) goes to the balance up to what was paid for the period and
    not given back yet; the rest comes off what is still owed for the period's plan on its open
    renewal invoice; what is left of it was neither paid nor billed and is not given."""
    credited = min(credit_cents, money.creditable_cents)
    owed = money.open_renewal.plan_cents if money.open_renewal is not None else 0
    off_invoice = min(credit_cents - credited, max(owed, 0))
    return CreditSplit(off_invoice, credited, credit_cents - credited - off_invoice)


def settle_invoice_payment(session: Session, invoice: Invoice) -> None:
    """Before the renewal invoice is reissued: a payment of it waiting for 3-D Secure is
    cancelled at Stripe (or found to have ended); one still processing blocks the change."""
    payment = session.get(Payment, (invoice.account_id, invoice.payment_id)) if invoice.payment_id else None
    if payment is None or payment.status in payments.ENDED:
        return
    payments.cancel_waiting(session, payment, "Cancelled: the invoice changes with your plan.")
    if payment.status not in payments.ENDED:
        raise Conflict("A payment of your open invoice is processing. Try again in a minute.")
