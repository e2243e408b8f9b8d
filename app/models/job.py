from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from app.models.base import utcnow


class Job(SQLModel, table=True):
    """Durable background work, enqueued in the same transaction as its cause."""

    __table_args__ = (Index("ix_job_status_run_at", "status", "run_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # pending | done | failed
    status: str = Field(default="pending", max_length=16)
    dedupe_key: str | None = Field(default=None, unique=True, max_length=200)
    run_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    max_attempts: int = 8
    locked_until: datetime | None = None
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # The request that caused the job, so the worker's log lines carry its id.
    request_id: str | None = Field(default=None, max_length=64)


class WorkerHeartbeat(SQLModel, table=True):
    """Each job-running process (a job worker, or a web worker running jobs in-app) writes its row
    while it polls, so /api/ready can tell that jobs are being run."""

    __tablename__ = "worker_heartbeat"

    worker: str = Field(primary_key=True, max_length=200)
    beat_at: datetime = Field(default_factory=utcnow)
