"""Structured logs (LOG_FORMAT=json): one JSON object per line; every API request gets an id (the
client's X-Request-Id when short and plain, else a new one) echoed in the response and logged with
its route, status, duration and account; the jobs it causes carry the id into the worker's lines."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.jobs import handlers  # noqa: F401  registers every job handler
from app.jobs.queue import run_due_jobs
from app.models import Job
from tests.integration.test_metering_api import NOON, Clock, Customer, _app


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


def test_a_request_id_reaches_the_request_log_and_the_jobs_it_causes(engine, clock: Clock, json_logs):
    customer = Customer(engine)
    customer.set_limits(daily_notify_threshold_cents=100)
    with TestClient(_app(engine, clock)) as api:
        answer = api.post(
            "/api/v1/usage", json={"amount_cents": 150}, headers=customer.headers(**{"X-Request-Id": "req-7Hq.2:a_b"})
        )
        plain = api.post("/api/v1/usage", json={"amount_cents": 1}, headers=customer.headers())
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "req-7Hq.2:a_b"
    generated = plain.headers["x-request-id"]
    assert len(generated) == 32 and generated != "req-7Hq.2:a_b"
    with Session(engine) as session:
        (job,) = session.exec(select(Job).where(Job.kind == "spend_notification")).all()
    assert job.request_id == "req-7Hq.2:a_b"
    run_due_jobs(engine)

    records, text = json_logs()
    requests = [r for r in records if r["logger"] == "ledgerdesk.http"]
    assert [(r["request_id"], r["route"], r["status"], r["account_id"]) for r in requests] == [
        ("req-7Hq.2:a_b", "/api/v1/usage", 200, customer.account_id),
        (generated, "/api/v1/usage", 200, customer.account_id),
    ]
    assert all(isinstance(r["duration_ms"], float) and r["level"] == "INFO" and r["time"] for r in requests)
    job_lines = [r for r in records if r.get("job_kind") == "spend_notification"]
    assert job_lines and all(r["request_id"] == "req-7Hq.2:a_b" for r in job_lines)
    assert any(r["message"].startswith(f"job {job.id} spend_notification done") for r in job_lines)
    assert customer.key not in text  # the API key never reaches the log


def test_an_unsafe_request_id_is_replaced(engine, clock: Clock, json_logs):
    with TestClient(_app(engine, clock)) as api:
        for unsafe in ("a" * 65, "id with spaces", "<script>"):
            echoed = api.get("/api/v1/balance", headers={"X-Request-Id": unsafe}).headers["x-request-id"]
            assert echoed != unsafe and len(echoed) == 32
    records, _ = json_logs()
    assert [r["status"] for r in records if r["logger"] == "ledgerdesk.http"] == [401, 401, 401]
