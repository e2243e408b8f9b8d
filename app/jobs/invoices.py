"""Jobs of invoicing: email an issued invoice with its PDF, and the monthly period close."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import invoices


@job_handler("invoice_issued")
def invoice_issued(session: Session, payload: dict[str, Any]) -> None:
    invoices.email_issued(session, payload["invoice_id"])


@job_handler("close_periods")
def close_periods(session: Session, payload: dict[str, Any]) -> None:
    invoices.close_periods(session, date.fromisoformat(payload["period_end"]))


@job_handler("close_period")
def close_period(session: Session, payload: dict[str, Any]) -> None:
    invoices.close_period(session, payload["account_id"], date.fromisoformat(payload["period_end"]))
