"""Money Stripe gives back to the payer, taken back from the balance: a refund (`charge.refunded`)
and a dispute (`charge.dispute.created`, `.funds_withdrawn`, `.funds_reinstated`, `.closed`).
Each movement is one append-only ledger entry keyed by what Stripe reported, so a replayed or
repeated event moves nothing; the payment shows its new status (which never goes back), the
invoices it paid show refunded or disputed, and the audit log records the change, with Stripe as
its author.

What is taken back is the usage credits the money bought (`_credits_lost`): a top-up's or auto
recharge's credits; the overage credit of the invoice an invoice payment (paid on the Invoices
page, or a renewal collected off-session) paid; and, for a plan change's payment or a renewal
invoice's, the credits plan changes gave in that period that the
money left no longer pays for (subscription.paid.credits_no_longer_paid). What is taken back may
leave the balance below zero, past the overage line (`ledger.take_back`). Callers commit."""

from __future__ import annotations

from sqlmodel import Session, select

from app.models import LedgerEntry, Payment
from app.services import audit, invoices, ledger
from app.services.money import format_usd
from app.services.roles import lock_account
from app.services.subscription import paid

# The order statuses move in after success; a later report of an earlier state changes nothing.
_ORDER = {"succeeded": 0, "partially_refunded": 1, "disputed": 2, "dispute_won": 3, "dispute_lost": 3, "refunded": 4}
# A closed dispute that leaves the money with us: won, or an inquiry closed without a dispute.
GIVEN_BACK = ("won", "warning_closed")


def charge_refunded(session: Session, payment: Payment, *, charge_id: str, refunded_cents: int) -> None:
    """Stripe has refunded `refunded_cents` of this payment's charge in all (Stripe's
    amount_refunded, a running total, so events may come in any order or more than once)."""
    _lock(session, payment)
    refunded = min(refunded_cents, payment.amount_cents)
    if refunded <= payment.refunded_cents:
        return
    newly = refunded - payment.refunded_cents
    amount = _credits_lost(session, payment, payment.refunded_cents, refunded)
    payment.refunded_cents = refunded
    taken = _take_back(
        session,
        payment,
        amount,
        "refund",
        f"Refund of Stripe charge {charge_id} (payment {payment.public_id})",
        f"stripe:refund:{charge_id}:{refunded}",
    )
    full = refunded >= payment.amount_cents
    _advance(session, payment, "refunded" if full else "partially_refunded")
    if full:
        invoices.payment_reversed(session, payment, "refunded")
    audit.record_from_stripe(
        session,
        payment.account_id,
        "payment.refund",
        f"Refunded {format_usd(newly)} of the {format_usd(payment.amount_cents)} payment {payment.public_id}"
        + _credits_note(taken, "taken back"),
    )


def dispute_withdrawn(
    session: Session, payment: Payment, *, dispute_id: str, amount_cents: int, status: str, funds_withdrawn: bool
) -> None:
    """A dispute on this payment's charge was opened (`charge.dispute.created`) or Stripe withdrew
    its amount (`charge.dispute.funds_withdrawn`, `funds_withdrawn` True). Either takes the
    disputed credits back, once for both; an inquiry (status warning_*) withdraws no money, so
    its opening takes nothing."""
    _lock(session, payment)
    if _ORDER.get(payment.status, 0) >= _ORDER["dispute_won"]:
        return  # the dispute's close came first: what it settled stands
    withdrawn = funds_withdrawn or not status.startswith("warning_")
    taken = _withdraw(session, payment, dispute_id, amount_cents, "opened") if withdrawn else 0
    moved = _advance(session, payment, "disputed")
    if withdrawn:
        invoices.payment_reversed(session, payment, "disputed")
    if moved or taken:
        what = (
            f"The {format_usd(amount_cents)} disputed on payment {payment.public_id} was withdrawn"
            if funds_withdrawn
            else f"A {format_usd(amount_cents)} dispute was opened on payment {payment.public_id}"
        )
        audit.record_from_stripe(
            session, payment.account_id, "payment.dispute", what + _credits_note(taken, "taken back")
        )


def dispute_settled(
    session: Session, payment: Payment, *, dispute_id: str, amount_cents: int, status: str, reinstated: bool
) -> None:
    """A dispute on this payment's charge was closed with Stripe's status, or Stripe gave its
    amount back (`charge.dispute.funds_reinstated`, `reinstated` True). Won (or reinstated) gives
    back what was taken, once for both; lost keeps it, and takes it then if the withdrawal was
    never seen."""
    _lock(session, payment)
    key = _dispute_key(dispute_id)
    won = reinstated or status in GIVEN_BACK
    moved_cents = 0
    if won:
        taken_entry = _entry(session, payment, key)
        if taken_entry is not None and _entry(session, payment, f"{key}:won") is None:
            moved_cents = -taken_entry.amount_cents
            ledger.credit(
                session,
                account_id=payment.account_id,
                amount_cents=moved_cents,
                source="dispute",
                description=f"Dispute {dispute_id} won",
                idempotency_key=f"{key}:won",
            )
        invoices.payment_reversed(session, payment, "paid")
    elif not status.startswith("warning_"):
        moved_cents = _withdraw(session, payment, dispute_id, amount_cents, "lost")
        invoices.payment_reversed(session, payment, "disputed")
    if _advance(session, payment, "dispute_won" if won else "dispute_lost") or moved_cents:
        audit.record_from_stripe(
            session,
            payment.account_id,
            "payment.dispute",
            f"The dispute on payment {payment.public_id} was {'won' if won else 'lost'}"
            + _credits_note(moved_cents, "given back" if won else "taken back"),
        )


def _lock(session: Session, payment: Payment) -> None:
    """The account first (plan changes credit under its lock, in this order), then the payment."""
    lock_account(session, payment.account_id)
    session.refresh(payment, with_for_update=True)


def _dispute_key(dispute_id: str) -> str:
    return f"stripe:dispute:{dispute_id}"


def _withdraw(session: Session, payment: Payment, dispute_id: str, amount_cents: int, what: str) -> int:
    """Take back the credits the disputed amount bought, once per dispute; how much moved now."""
    key = _dispute_key(dispute_id)
    if _entry(session, payment, key) is not None:
        return 0
    lost = min(payment.refunded_cents + amount_cents, payment.amount_cents)
    amount = _credits_lost(session, payment, payment.refunded_cents, lost)
    return _take_back(session, payment, amount, "dispute", f"Dispute {dispute_id} {what}", key)


def _credits_lost(session: Session, payment: Payment, lost_before: int, lost_after: int) -> int:
    """The credits the payment bought that are no longer paid for when the money it lost to
    refunds and disputes grows from `lost_before` to `lost_after` cents."""
    if payment.ledger_entry_id is not None:
        return lost_after - lost_before  # a top-up or auto recharge: a cent of credit per cent
    lost = 0
    if payment.method in invoices.INVOICE_PAYMENTS:
        # The invoice's overage came back to the balance when it was paid: the loss takes it first.
        overage = invoices.overage_bought(session, payment)
        lost += min(lost_after, overage) - min(lost_before, overage)
    return lost + paid.credits_no_longer_paid(session, payment, lost_before, lost_after)


def _take_back(session: Session, payment: Payment, amount_cents: int, source: str, description: str, key: str) -> int:
    """Take back `amount_cents` of credits under `key`, once; how much moved now."""
    if amount_cents <= 0 or _entry(session, payment, key) is not None:
        return 0
    entry = ledger.take_back(
        session,
        account_id=payment.account_id,
        amount_cents=amount_cents,
        source=source,
        description=description,
        idempotency_key=key,
    )
    return -entry.amount_cents


def _entry(session: Session, payment: Payment, key: str) -> LedgerEntry | None:
    """The entry already posted under `key` for the payment's account."""
    return session.exec(
        select(LedgerEntry).where(LedgerEntry.account_id == payment.account_id, LedgerEntry.idempotency_key == key)
    ).first()


def _advance(session: Session, payment: Payment, status: str) -> bool:
    """Move the succeeded payment on to `status`, never back; whether it moved."""
    if _ORDER[status] <= _ORDER.get(payment.status, _ORDER[status]):
        return False
    payment.status = status
    session.add(payment)
    session.flush()
    return True


def _credits_note(cents: int, what: str) -> str:
    return f"; {format_usd(cents)} of usage credits {what}" if cents else "; no usage credits moved"
