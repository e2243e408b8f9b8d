"""The usage rollup (app/services/usage.py): the sweep that finds the accounts behind, and each
account's run, which enqueues the next when it left entries behind."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import usage


@job_handler("usage_rollup_sweep")
def usage_rollup_sweep(session: Session, payload: dict[str, Any]) -> None:
    usage.sweep(session)


@job_handler("usage_rollup")
def usage_rollup(session: Session, payload: dict[str, Any]) -> None:
    account_id = payload["account_id"]
    if usage.roll_up(session, account_id):
        usage.enqueue_roll_up(session, account_id, f"after:{usage.watermark(session, account_id)}")
