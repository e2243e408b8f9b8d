"""Jobs of invoicing: email an issued invoice with its PDF, the monthly period close, and
collecting its invoice off-session (dunning) with the final action when that fails for good."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.models import utcnow
from app.services import invoices, subscription


@job_handler("invoice_issued")
def invoice_issued(session: Session, payload: dict[str, Any]) -> None:
    invoices.email_issued(session, payload["account_id"], payload["invoice_id"])


@job_handler("close_periods")
def close_periods(session: Session, payload: dict[str, Any]) -> None:
    invoices.close_periods(session, date.fromisoformat(payload["period_end"]))


@job_handler("close_period")
def close_period(session: Session, payload: dict[str, Any]) -> None:
    """The month's invoice of one account, then (for a card account) its off-session charge."""
    now = utcnow()
    invoice = invoices.close_period(session, payload["account_id"], date.fromisoformat(payload["period_end"]), now)
    if invoice is not None:
        invoices.start_collection(session, invoice, now)


@job_handler("collect_invoice")
def collect_invoice(session: Session, payload: dict[str, Any]) -> None:
    invoices.collect(session, payload["account_id"], payload["invoice_id"], payload["attempt"], utcnow())


@job_handler("renewal_unpaid")
def renewal_unpaid(session: Session, payload: dict[str, Any]) -> None:
    subscription.step_down_unpaid(session, payload["account_id"], payload["invoice_id"], utcnow())
