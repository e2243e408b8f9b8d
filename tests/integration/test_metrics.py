"""Prometheus metrics at /metrics: a scrape of the backend started as production starts it (two
granian workers, the multiprocess directory `app.cli serve` sets up) sees requests, metering
outcomes, debited cents and the job queue move under load, whichever worker answers; the
endpoint refuses addresses outside METRICS_ALLOWED_IPS and anything that came through a proxy;
the sample alert rules and dashboard only use metrics the console exports."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from app import metrics
from app.api import create_api
from app.api.metrics import metrics_engine
from app.api.request_log import RequestContextMiddleware
from app.config import ConfigError, load_settings
from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import Job, utcnow
from app.services import api_keys
from tests.factories import grant, owner_and_account
from tests.live_backend import LiveBackend
from tests.metrics import sample

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def _debits(url: str, key: str, count: int, amount: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one() -> int:
            response = await client.post(
                f"{url}/api/v1/usage", json={"amount_cents": amount}, headers={"Authorization": f"Bearer {key}"}
            )
            return response.status_code

        return await asyncio.gather(*(one() for _ in range(count)))


@pytest.fixture
def backend(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    # Two workers need Redis for Reflex's page state; without it one worker still shows the counts.
    workers, env = (2, {"REDIS_URL": "redis://127.0.0.1:6379/8"}) if _redis_up() else (1, {})
    with LiveBackend(tmp_path / "data", url, workers=workers, env=env) as live:
        yield live, engine
    engine.dispose()


def test_a_scrape_sees_requests_metering_and_jobs_move_under_load(backend):
    live, engine = backend
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, 10_000, description="", key="grant")
        _, key = api_keys.create_key(session, actor, "Metrics")
        # A job that cannot run (no such kind, one attempt) and one overdue job leased elsewhere.
        session.add(Job(kind="no_such_kind", max_attempts=1))
        session.add(
            Job(kind="stuck", run_at=utcnow() - timedelta(minutes=10), locked_until=utcnow() + timedelta(hours=1))
        )
        session.commit()
    before = _scrape(live.url)

    statuses = asyncio.run(_debits(live.url, key, 60, 25))
    assert statuses == [200] * 60
    refused = [
        httpx.post(f"{live.url}/api/v1/usage", json={"amount_cents": 25}, headers={"Authorization": "Bearer ld_nope"}),
        httpx.post(
            f"{live.url}/api/v1/usage", json={"amount_cents": 100_000}, headers={"Authorization": f"Bearer {key}"}
        ),
    ]
    assert [r.status_code for r in refused] == [401, 402]
    # Scrapes go to either worker: every one of them must see the other worker's counts too.
    for _ in range(4):
        after = _scrape(live.url)
        ok = dict(method="POST", route="/api/v1/usage", status="200")
        assert (
            _value(after, "ledgerdesk_http_requests_total", **ok)
            - _value(before, "ledgerdesk_http_requests_total", **ok)
            == 60
        )
        latency = dict(method="POST", route="/api/v1/usage")
        name = "ledgerdesk_http_request_duration_seconds_count"
        assert _value(after, name, **latency) - _value(before, name, **latency) == 62
        assert _value(after, "ledgerdesk_metering_calls_total", outcome="ok") == 60
        assert _value(after, "ledgerdesk_metering_calls_total", outcome="invalid_api_key") == 1
        assert _value(after, "ledgerdesk_metering_calls_total", outcome="insufficient_credits") == 1
        assert _value(after, "ledgerdesk_metering_debited_cents_total") == 60 * 25

    # The in-app job worker fails the unknown job for good; the leased one waits, overdue.
    for _ in range(60):
        after = _scrape(live.url)
        if _value(after, "ledgerdesk_jobs_failed", kind="no_such_kind") == 1:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert _value(after, "ledgerdesk_job_failures_total", kind="no_such_kind", final="true") == 1
    assert _value(after, "ledgerdesk_jobs_failed", kind="no_such_kind") == 1
    assert _value(after, "ledgerdesk_job_queue_depth") >= 1
    assert _value(after, "ledgerdesk_job_oldest_due_age_seconds") >= 600

    # Through a proxy every visitor would look like loopback: refused.
    proxied = httpx.get(f"{live.url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert proxied.status_code == 403


def _metrics_status(client_host: str, engine) -> int:
    api = create_api()
    api.dependency_overrides[metrics_engine] = lambda: engine

    async def get() -> int:
        transport = httpx.ASGITransport(app=api, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            return (await client.get("/metrics")).status_code

    return asyncio.run(get())


def test_metrics_are_served_only_to_the_allowed_addresses(sqlite_engine):
    # The default is loopback (IPv4, IPv6 and IPv4 as an IPv6 socket reports it).
    for allowed in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert _metrics_status(allowed, sqlite_engine) == 200, allowed
    for refused in ("203.0.113.9", "10.1.2.3", "2001:db8::1"):
        assert _metrics_status(refused, sqlite_engine) == 403, refused


def test_metrics_allowed_ips_takes_ranges_and_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "10.0.0.0/8, 192.0.2.1")
    networks = load_settings().metrics_allowed_ips
    assert [str(n) for n in networks] == ["10.0.0.0/8", "192.0.2.1/32"]
    monkeypatch.setenv("METRICS_ALLOWED_IPS", "prometheus.internal")
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_IPS"):
        load_settings()


def test_open_websockets_are_counted_until_they_close():
    async def echo(scope, receive, send):
        socket = WebSocket(scope, receive, send)
        await socket.accept()
        while (text := await socket.receive_text()) != "bye":
            await socket.send_text(text)
        await socket.close()

    client = TestClient(RequestContextMiddleware(echo))
    before = sample("ledgerdesk_websocket_connections")
    with client.websocket_connect("/_event") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"
        assert sample("ledgerdesk_websocket_connections") == before + 1
        ws.send_text("bye")
    assert sample("ledgerdesk_websocket_connections") == before


def _metric_names(expression: str) -> set[str]:
    return {name for name in re.findall(r"\b(ledgerdesk_[a-z_]+)", expression)}


def _exported() -> set[str]:
    """Every series name the console exports: app/metrics.py's and those read at scrape."""
    names = {"ledgerdesk_job_queue_depth", "ledgerdesk_job_oldest_due_age_seconds", "ledgerdesk_jobs_failed"}
    for value in vars(metrics).values():
        if hasattr(value, "_name") and hasattr(value, "_type"):
            base = value._name
            names.update({base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"})
    return names


def test_the_sample_alert_rules_and_dashboard_use_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert {"MeteringErrorRateHigh", "JobBacklogOld", "WebhookDeliveriesFailing", "StripeErrors"} <= set(alerts)
    for name, rule in alerts.items():
        assert rule["expr"].strip() and rule["labels"]["severity"] and rule["annotations"]["summary"], name
        used = _metric_names(rule["expr"])
        assert used and used <= _exported(), (name, used - _exported())
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(expressions) >= 8
    used = set().union(*(_metric_names(e) for e in expressions))
    assert used <= _exported(), used - _exported()
