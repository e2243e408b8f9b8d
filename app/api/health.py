"""Liveness and readiness, in JSON, for a load balancer and an orchestrator."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.config import get_settings
from app.db import get_engine, get_replica_engine
from app.services import health as checks

router = APIRouter()


def health_engine() -> Engine:
    """A dependency, so tests can point the checks at their database."""
    return get_engine()


def replica_engine() -> Engine | None:
    """The read replica's engine (None without DATABASE_REPLICA_URL); a dependency, like the above."""
    return get_replica_engine()


@router.get("/api/health", include_in_schema=False)
def health(engine: Engine = Depends(health_engine)) -> dict:
    with engine.connect() as conn:
        conn.execute(text("select 1"))
    return {"status": "ok"}


@router.get("/api/ready", include_in_schema=False)
def ready(engine: Engine = Depends(health_engine), replica: Engine | None = Depends(replica_engine)) -> JSONResponse:
    """503 naming the failing checks when the console cannot serve: the database, Redis (when
    REDIS_URL is set), the schema at the migrations' head, a job worker's recent heartbeat. The
    read replica (when DATABASE_REPLICA_URL is set) is reported, "ok" or "down", and stays out of it."""
    report = checks.readiness(engine, get_settings().redis_url, replica=replica)
    return JSONResponse(report.body(), status_code=200 if report.ready else 503)
