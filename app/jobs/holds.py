"""Job "hold_expiry": a hold still open at its expiry gives back what it held (one per hold,
due at `expires_at`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import holds


@job_handler("hold_expiry")
def hold_expiry(session: Session, payload: dict[str, Any]) -> None:
    holds.expire(session, payload["account_id"], payload["hold_id"])
