"""A job queue in the application database.

Jobs are enqueued in the caller's transaction, so a job exists exactly when the change that
caused it was committed. Workers claim due jobs with a lease (`locked_until`); a worker that dies
leaves its lease to expire and the job runs again, so every handler must be idempotent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import logs, metrics
from app.models import Job, utcnow

log = logging.getLogger("ledgerdesk.jobs")

Handler = Callable[[Session, dict[str, Any]], None]
_HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(minutes=2)


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = 8,
) -> Job | None:
    """Add a job to the caller's transaction. With a dedupe_key, a second enqueue is a no-op."""
    if dedupe_key is not None:
        existing = session.exec(select(Job).where(Job.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return None
    job = Job(
        request_id=logs.current("request_id"),
        kind=kind,
        payload=json.dumps(payload),
        dedupe_key=dedupe_key,
        run_at=run_at or utcnow(),
        max_attempts=max_attempts,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        return None
    return job


def backoff(attempt: int) -> timedelta:
    """Exponential: 2 s, 4 s, 8 s, ... capped at one hour."""
    return timedelta(seconds=min(2**attempt, 3600))


def _claim(engine: Engine, now: datetime) -> Job | None:
    with Session(engine, expire_on_commit=False) as session:
        query = (
            select(Job)
            .where(Job.status == "pending", col(Job.run_at) <= now)
            .where(or_(col(Job.locked_until).is_(None), col(Job.locked_until) < now))
            .order_by(col(Job.run_at), col(Job.id))
            .limit(1)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job = session.exec(query).first()
        if job is None:
            session.rollback()
            return None
        job.locked_until = now + LEASE
        job.attempts += 1
        session.add(job)
        session.commit()
        return job


def _finish(engine: Engine, job: Job, error: str | None, now: datetime) -> None:
    with Session(engine) as session:
        values: dict[str, Any] = {"locked_until": None}
        if error is None:
            values.update(status="done", finished_at=now, last_error="")
        elif job.attempts >= job.max_attempts:
            values.update(status="failed", finished_at=now, last_error=error[:2000])
            log.error("job %s %s failed for good: %s", job.id, job.kind, error)
        else:
            values.update(run_at=now + backoff(job.attempts), last_error=error[:2000])
            log.warning("job %s %s failed (attempt %s): %s", job.id, job.kind, job.attempts, error)
        session.execute(update(Job).where(col(Job.id) == job.id).values(**values))
        session.commit()


def run_due_jobs(engine: Engine, *, limit: int = 100, now: Callable[[], datetime] = utcnow) -> int:
    """Run up to `limit` due jobs, each in its own transaction. Returns how many ran."""
    ran = 0
    while ran < limit:
        job = _claim(engine, now())
        if job is None:
            break
        with logs.log_context(request_id=job.request_id, job_id=job.id, job_kind=job.kind):
            handler = _HANDLERS.get(job.kind)
            error: str | None = None
            started = time.perf_counter()
            if handler is None:
                error = f"no handler for job kind {job.kind!r}"
            else:
                try:
                    with Session(engine, expire_on_commit=False) as session:
                        handler(session, json.loads(job.payload))
                        session.commit()
                except Exception as exc:  # a failing job is retried, never crashes the worker
                    error = f"{type(exc).__name__}: {exc}"
            _finish(engine, job, error, now())
            if error is not None:
                metrics.record_job_failure(job.kind, final=job.attempts >= job.max_attempts)
            else:
                log.info("job %s %s done in %.0f ms", job.id, job.kind, (time.perf_counter() - started) * 1000)
        ran += 1
    return ran


def queue_stats(engine: Engine, now: datetime) -> tuple[int, float, dict[str, int]]:
    """For /metrics, read at scrape: due pending jobs, the oldest due one's wait in seconds (0 when
    none), and the jobs that failed for good, by kind."""
    with Session(engine) as session:
        due = (col(Job.status) == "pending", col(Job.run_at) <= now)
        depth = session.exec(select(func.count()).select_from(Job).where(*due)).one()
        oldest = session.exec(select(func.min(Job.run_at)).where(*due)).one()
        failed = session.exec(
            select(Job.kind, func.count()).where(Job.status == "failed").group_by(col(Job.kind))
        ).all()
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return depth, max(age, 0.0), dict(failed)
