"""Job "auto_recharge": one recharge of an account, enqueued by the ledger (and by a failed
recharge for its retry)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.models import utcnow
from app.services import recharge


@job_handler("auto_recharge")
def auto_recharge(session: Session, payload: dict[str, Any]) -> None:
    recharge.run_recharge(session, payload["account_id"], payload["seq"], utcnow())
