"""Job "auto_recharge": one recharge of an account, enqueued by the ledger (and by a failed
recharge for its retry). Job "auto_recharge_resume": the end of a pause at the monthly ceiling."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.models import utcnow
from app.services import recharge


@job_handler("auto_recharge")
def auto_recharge(session: Session, payload: dict[str, Any]) -> None:
    recharge.run_recharge(session, payload["account_id"], payload["seq"], utcnow())


@job_handler("auto_recharge_resume")
def auto_recharge_resume(session: Session, payload: dict[str, Any]) -> None:
    recharge.resume(session, payload["account_id"], utcnow())
