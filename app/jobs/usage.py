"""The usage rollup's sweep (app/services/usage.py), every minute."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import usage


@job_handler("usage_rollup_sweep")
def usage_rollup_sweep(session: Session, payload: dict[str, Any]) -> None:
    usage.sweep(session)
