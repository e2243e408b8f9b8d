"""Jobs of credit grants: walk the ledger to record which grants paid which debits, and expire
grants (app.services.grants)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import grants


@job_handler("grant_upkeep")
def grant_upkeep(session: Session, payload: dict[str, Any]) -> None:
    grants.upkeep(session)


@job_handler("expire_grant")
def expire_grant(session: Session, payload: dict[str, Any]) -> None:
    grants.expire_grant(session, payload["account_id"], payload["grant_id"])
