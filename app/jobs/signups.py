"""Job "prune_sign_ups": sign-ups whose verification link expired unused are deleted (hourly)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import signup


@job_handler("prune_sign_ups")
def prune_sign_ups(session: Session, payload: dict[str, Any]) -> None:
    signup.prune_expired(session)
