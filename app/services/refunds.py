"""Money Stripe gives back to the payer, taken back from the balance: a refund (`charge.refunded`)
and a dispute (`charge.dispute.created` / `.closed`). Each movement is one append-only ledger
entry keyed by what Stripe reported, so a replayed or repeated event moves nothing; the payment
shows its new status (which never goes back) and the audit log records the change, with Stripe
as its author.

Only credits the payment bought are taken back (top-ups and auto recharges); a refunded or
disputed invoice or plan payment bought none, so it is recorded and moves no credits. What is
taken back may leave the balance below zero, past the overage line (`ledger.take_back`).
Callers commit."""

from __future__ import annotations

from sqlmodel import Session, select

from app.models import LedgerEntry, Payment
from app.services import audit, ledger
from app.services.money import format_usd

# The order statuses move in after success; a later report of an earlier state changes nothing.
_ORDER = {"succeeded": 0, "partially_refunded": 1, "disputed": 2, "dispute_won": 3, "dispute_lost": 3, "refunded": 4}
# A closed dispute that leaves the money with us: won, or an inquiry closed without a dispute.
GIVEN_BACK = ("won", "warning_closed")


def charge_refunded(session: Session, payment: Payment, *, charge_id: str, refunded_cents: int) -> None:
    """Stripe has refunded `refunded_cents` of this payment's charge in all (Stripe's
    amount_refunded, a running total, so events may come in any order or more than once)."""
    session.refresh(payment, with_for_update=True)
    refunded = min(refunded_cents, payment.amount_cents)
    if refunded <= payment.refunded_cents:
        return
    newly = refunded - payment.refunded_cents
    payment.refunded_cents = refunded
    taken = _take_back(
        session,
        payment,
        newly,
        "refund",
        f"Refund of Stripe charge {charge_id} (payment {payment.public_id})",
        f"stripe:refund:{charge_id}:{refunded}",
    )
    _advance(session, payment, "refunded" if refunded >= payment.amount_cents else "partially_refunded")
    audit.record_from_stripe(
        session,
        payment.account_id,
        "payment.refund",
        f"Refunded {format_usd(newly)} of the {format_usd(payment.amount_cents)} payment {payment.public_id}"
        + _credits_note(taken, "taken back"),
    )


def dispute_changed(
    session: Session, payment: Payment, *, dispute_id: str, amount_cents: int, status: str, closed: bool
) -> None:
    """A dispute on this payment's charge was opened (`closed` False) or closed with Stripe's
    status. Opening takes the disputed credits back (an inquiry, status warning_*, withdraws no
    money and takes nothing); closing won gives back what was taken, closing lost keeps it."""
    session.refresh(payment, with_for_update=True)
    key = f"stripe:dispute:{dispute_id}"
    if not closed:
        if _ORDER.get(payment.status, 0) >= _ORDER["dispute_won"]:
            return  # the dispute's close came first: what it settled stands
        if status.startswith("warning_"):
            taken = 0
        else:
            amount = min(amount_cents, payment.amount_cents - payment.refunded_cents)
            taken = _take_back(session, payment, amount, "dispute", f"Dispute {dispute_id} opened", key)
        if _advance(session, payment, "disputed"):
            audit.record_from_stripe(
                session,
                payment.account_id,
                "payment.dispute",
                f"A {format_usd(amount_cents)} dispute was opened on payment {payment.public_id}"
                + _credits_note(taken, "taken back"),
            )
        return
    won = status in GIVEN_BACK
    taken_entry = session.exec(select(LedgerEntry).where(LedgerEntry.idempotency_key == key)).first()
    given = 0
    if won and taken_entry is not None:
        given = -taken_entry.amount_cents
        ledger.credit(
            session,
            account_id=payment.account_id,
            amount_cents=given,
            source="dispute",
            description=f"Dispute {dispute_id} won",
            idempotency_key=f"{key}:won",
        )
    elif not won and taken_entry is None and not status.startswith("warning_"):
        # Lost without our having seen it opened: take the credits back now.
        amount = min(amount_cents, payment.amount_cents - payment.refunded_cents)
        _take_back(session, payment, amount, "dispute", f"Dispute {dispute_id} lost", key)
    if _advance(session, payment, "dispute_won" if won else "dispute_lost"):
        audit.record_from_stripe(
            session,
            payment.account_id,
            "payment.dispute",
            f"The dispute on payment {payment.public_id} was {'won' if won else 'lost'}"
            + _credits_note(given, "given back"),
        )


def _take_back(session: Session, payment: Payment, amount_cents: int, source: str, description: str, key: str) -> int:
    """Take back up to `amount_cents` of the credits the payment bought; how much was taken."""
    if payment.ledger_entry_id is None or amount_cents <= 0:
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
