"""/api/health and /api/ready over HTTP (create_api() on the test database): ready when the
database answers, the schema is at head and a job worker beat recently; 503 naming the failing
check otherwise (the database down, Redis down, migrations behind, no job worker)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from app.api import create_api
from app.api import health as health_api
from app.config import get_settings
from app.db import make_engine
from app.jobs import worker
from app.models import WorkerHeartbeat, utcnow
from app.services import health


@pytest.fixture
def redis_url(monkeypatch):
    def use(url: str) -> None:
        monkeypatch.setenv("REDIS_URL", url)
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


def _client(engine) -> TestClient:
    api = create_api()
    api.dependency_overrides[health_api.health_engine] = lambda: engine
    return TestClient(api)


def test_ready_when_the_database_answers_at_head_and_a_worker_beat(engine):
    health.beat(engine, "web-1:42")
    answer = _client(engine).get("/api/ready")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "migrations": "ok",
        "job_worker": "ok",
    }
    assert _client(engine).get("/api/health").json() == {"status": "ok"}


def test_not_ready_without_a_recent_job_worker_heartbeat(engine):
    answer = _client(engine).get("/api/ready")
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["job_worker"]
    health.beat(engine, "worker-1:7", now=utcnow() - health.STALE - timedelta(seconds=5))
    answer = _client(engine).get("/api/ready")
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["job_worker"]
    assert "no job worker has run for" in answer.json()["checks"]["job_worker"]["detail"]


@pytest.mark.parametrize(
    "url", ["sqlite:////nonexistent-ledgerdesk-dir/ledgerdesk.db", "postgresql+psycopg://postgres@127.0.0.1:1/ledger"]
)
def test_database_down_answers_503_naming_the_database(url):
    down = make_engine(url)
    client = _client(down)
    answer = client.get("/api/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable" and body["failing"] == ["database"]
    assert body["checks"]["migrations"]["status"] == "skipped"
    assert client.get("/api/health").status_code == 503
    down.dispose()


def test_schema_behind_the_migrations_is_not_ready(engine):
    health.beat(engine, "web-1:42")
    with engine.begin() as connection:
        (head,) = connection.execute(text("select version_num from alembic_version")).one()
        connection.execute(text("update alembic_version set version_num = '20261204_requests_today'"))
    try:
        answer = _client(engine).get("/api/ready")
    finally:
        with engine.begin() as connection:
            connection.execute(text("update alembic_version set version_num = :head"), {"head": head})
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["migrations"]
    assert "python -m app.cli migrate" in answer.json()["checks"]["migrations"]["detail"]


def test_redis_is_checked_when_configured(sqlite_engine, redis_url):
    health.beat(sqlite_engine, "web-1:42")
    redis_url("redis://127.0.0.1:1/0")
    answer = _client(sqlite_engine).get("/api/ready")
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["redis"]


def test_the_job_worker_writes_its_heartbeat_while_it_polls(sqlite_engine, monkeypatch):
    monkeypatch.setattr(worker, "get_engine", lambda: sqlite_engine)

    async def run_briefly() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(worker.run_worker_forever(), timeout=1.5)

    asyncio.run(run_briefly())
    with Session(sqlite_engine) as session:
        (beat,) = session.exec(select(WorkerHeartbeat)).all()
    assert beat.worker == health.worker_name()
    assert _client(sqlite_engine).get("/api/ready").status_code == 200
