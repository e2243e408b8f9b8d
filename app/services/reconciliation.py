"""The reconciliation janitor: every SWEEP_EVERY, job "reconcile_payments" finds the payments
whose outcome we do not know and enqueues one job "reconcile_payment" for each, which asks Stripe
(`payments.reconcile`) and settles it through the one settle path, exactly once. Unknown means:
Stripe's answer to the charge was lost (a timeout or a 5xx: `Payment.outcome_unknown_at`), the
payment never left pending (a crash between our commit and Stripe's answer, or an off-session
charge whose retries ran out), or it has waited for Stripe (processing, 3-D Secure) longer than
WAITING_CHECK_AFTER. Crypto payments are Checkout Sessions, which Stripe ends itself (they expire
after a day), so they are left to its webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, or_, select

from app.jobs.queue import enqueue
from app.models import Payment, utcnow
from app.services import payments

SWEEP_EVERY = timedelta(minutes=5)
WAITING_CHECK_AFTER = timedelta(hours=1)
SWEEP_LIMIT = 500


def _next_sweep(now: datetime) -> datetime:
    step = int(SWEEP_EVERY.total_seconds())
    return datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, tz=UTC)


def schedule_sweep(session: Session, now: datetime | None = None) -> None:
    """Make sure the next sweep is due; each sweep schedules the one after it."""
    run_at = _next_sweep(now or utcnow())
    enqueue(session, "reconcile_payments", {}, dedupe_key=f"reconcile_payments:{run_at.isoformat()}", run_at=run_at)


def payments_to_reconcile(session: Session, now: datetime) -> list[tuple[int, int]]:
    """(account id, payment id) of each."""
    return [
        (account_id, payment_id)
        for account_id, payment_id in session.exec(
            select(Payment.account_id, Payment.id)
            .where(
                col(Payment.stripe_checkout_session_id).is_(None),
                or_(
                    col(Payment.outcome_unknown_at).is_not(None),
                    (Payment.status == "pending") & (Payment.created_at <= now - payments.UNREACHED_AFTER),
                    col(Payment.status).in_(payments.WAITING) & (Payment.updated_at <= now - WAITING_CHECK_AFTER),
                ),
            )
            .order_by(col(Payment.id))
            .limit(SWEEP_LIMIT)
        )
        if payment_id is not None
    ]


def sweep(session: Session, now: datetime | None = None) -> int:
    """Job "reconcile_payments": one job per payment to reconcile (so one Stripe failure delays
    only its own), then the next sweep. Returns how many were enqueued."""
    now = now or utcnow()
    found = payments_to_reconcile(session, now)
    for account_id, payment_id in found:
        enqueue(
            session,
            "reconcile_payment",
            {"account_id": account_id, "payment_id": payment_id},
            dedupe_key=f"reconcile_payment:{payment_id}:{now.isoformat()}",
            max_attempts=4,
        )
    schedule_sweep(session, now)
    return len(found)


def reconcile_payment(session: Session, account_id: int, payment_id: int, now: datetime | None = None) -> None:
    """Job "reconcile_payment"."""
    payment = session.get(Payment, (account_id, payment_id))
    if payment is not None:
        payments.reconcile(session, payment, now=now)
