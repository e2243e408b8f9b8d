"""Jobs that bring payments up to date with Stripe: the reconciliation janitor's sweep and its
per-payment look-ups, and Stripe events that arrived before their payment was committed."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import reconciliation, stripe_events


@job_handler("reconcile_payments")
def reconcile_payments(session: Session, payload: dict[str, Any]) -> None:
    reconciliation.sweep(session)


@job_handler("reconcile_payment")
def reconcile_payment(session: Session, payload: dict[str, Any]) -> None:
    reconciliation.reconcile_payment(session, payload["account_id"], payload["payment_id"])


@job_handler("stripe_event")
def stripe_event(session: Session, payload: dict[str, Any]) -> None:
    stripe_events.apply_deferred(session, payload["event_id"])
