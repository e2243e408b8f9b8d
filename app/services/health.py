"""Readiness, for a load balancer or an orchestrator: the database answers, Redis answers when
configured, the schema is at the migrations' head, and a job-running process beat recently. The
read replica, when configured, is reported but does not decide: without it the reporting pages
read the primary."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Engine

from app.migrations import alembic_config
from app.models import WorkerHeartbeat, utcnow

# A worker beats at most this often, and is taken for gone past STALE (its lease on a job is 2 minutes,
# and a long batch of jobs holds the beat back).
BEAT_EVERY = timedelta(seconds=10)
STALE = timedelta(minutes=2)
FORGET = timedelta(days=1)
# Reported in the checks, never a reason to be unavailable.
ADVISORY = ("replica",)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(engine: Engine, worker: str, now: datetime | None = None) -> None:
    """This process is running jobs. Rows of processes gone for a day are removed."""
    now = now or utcnow()
    with engine.begin() as connection:
        found = connection.execute(
            update(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker).values(beat_at=now)  # type: ignore[arg-type]
        ).rowcount
        if not found:
            connection.execute(WorkerHeartbeat.__table__.insert().values(worker=worker, beat_at=now))  # type: ignore[attr-defined]
        connection.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET))  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def _head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


@lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}"[:300]


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if check["status"] == "failing"]

    @property
    def ready(self) -> bool:
        return not self.failing and all(
            check["status"] == "ok" for name, check in self.checks.items() if name not in ADVISORY
        )

    def body(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "unavailable", "failing": self.failing, "checks": self.checks}


def readiness(
    engine: Engine, redis_url: str = "", now: datetime | None = None, replica: Engine | None = None
) -> Readiness:
    now = now or utcnow()
    report = Readiness()
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
            report.checks["database"] = {"status": "ok"}
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
            last_beat = connection.execute(select(func.max(WorkerHeartbeat.beat_at))).scalar()
    except Exception as exc:  # whatever the driver raises, the answer is "not reachable"
        report.checks["database"] = {"status": "failing", "detail": _reason(exc)}
        for name in ("migrations", "job_worker"):
            report.checks[name] = {"status": "skipped", "detail": "the database is not reachable"}
    else:
        heads = _head_revisions()
        if current == heads:
            report.checks["migrations"] = {"status": "ok", "revision": ", ".join(sorted(current))}
        else:
            report.checks["migrations"] = {
                "status": "failing",
                "detail": f"database at {', '.join(sorted(current)) or 'no revision'}, "
                f"migrations at {', '.join(sorted(heads))}: run python -m app.cli migrate",
            }
        if last_beat is None:
            report.checks["job_worker"] = {"status": "failing", "detail": "no job worker has run"}
        else:
            age = (now - _aware(last_beat)).total_seconds()
            ok = age <= STALE.total_seconds()
            report.checks["job_worker"] = {
                "status": "ok" if ok else "failing",
                "last_beat_seconds_ago": round(age),
                **({} if ok else {"detail": f"no job worker has run for {round(age)} s"}),
            }
    if redis_url:
        try:
            _redis(redis_url).ping()
            report.checks["redis"] = {"status": "ok"}
        except Exception as exc:  # any failure means not reachable
            report.checks["redis"] = {"status": "failing", "detail": _reason(exc)}
    if replica is not None:
        try:
            with replica.connect() as connection:
                connection.execute(text("select 1"))
            report.checks["replica"] = {"status": "ok"}
        except Exception as exc:  # any failure means the reporting pages read the primary
            report.checks["replica"] = {
                "status": "down",
                "detail": f"{_reason(exc)}; the reporting pages read the primary",
            }
    return report


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
