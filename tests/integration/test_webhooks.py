"""Outgoing webhooks: a local receiver gets signed POSTs it verifies with standardwebhooks; a failing
receiver gets retries with backoff, each attempt logged; the signing secret and test events."""

import base64
import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session, select
from standardwebhooks import Webhook

from app.errors import PermissionDenied, ValidationFailed
from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs.queue import run_due_jobs
from app.models import Account, Job, WebhookAttempt, WebhookDelivery, utcnow
from app.services import ledger, spend, webhooks
from app.services.overview import billing_settings
from tests.factories import actor_for, grant, make_user, owner_and_account
from tests.metrics import sample

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Receiver:
    """An HTTP endpoint on a free local port that answers `status` and keeps what it got."""

    def __init__(self, port: int = 0):
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ledgerdesk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def _account_with_webhook(session, url, **limits):
    actor, account = owner_and_account(session)
    grant(session, account.id, 100_000, description="", key=f"g{account.id}")
    spend.save_settings(
        session,
        actor,
        enabled=True,
        daily_budget=limits.get("budget", ""),
        notify_threshold=limits.get("threshold", ""),
        webhook_url=url,
    )
    session.commit()
    return actor, account


def _deliveries(engine):
    with Session(engine) as session:
        return session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def _attempts(engine):
    with Session(engine) as session:
        return session.exec(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()


def test_spend_lines_reach_the_receiver_signed_once_per_day(engine, receiver):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = _account_with_webhook(session, receiver.url, budget="2", threshold="1")
        secret = billing_settings(session, account.id).webhook_secret
        for key, cents in (("a", 60), ("b", 60), ("c", 80)):
            ledger.debit_usage(session, account_id=account.id, amount_cents=cents, idempotency_key=key, now=NOON)
            session.commit()
    run_due_jobs(engine)

    events = [Webhook(secret).verify(body, headers) for headers, body in receiver.requests]
    assert [(e["type"], e["data"]) for e in events] == [
        (
            "spend.threshold_reached",
            {"account_id": account.public_id, "day": "2026-03-10", "used_cents": 120, "threshold_cents": 100},
        ),
        (
            "spend.budget_reached",
            {"account_id": account.public_id, "day": "2026-03-10", "used_cents": 200, "budget_cents": 200},
        ),
    ]
    assert datetime.fromisoformat(events[0]["timestamp"]) <= utcnow()
    assert [(d.status, d.attempts, d.last_status_code) for d in _deliveries(engine)] == [("delivered", 1, 200)] * 2
    assert [a.status_code for a in _attempts(engine)] == [200, 200]

    with Session(engine) as session:
        ledger.debit_usage(
            session, account_id=account.id, amount_cents=150, idempotency_key="e", now=NOON + timedelta(days=1)
        )
        session.commit()
    run_due_jobs(engine)
    assert [json.loads(body)["data"]["day"] for _, body in receiver.requests] == [
        "2026-03-10",
        "2026-03-10",
        "2026-03-11",
    ]


def test_a_tampered_body_or_another_secret_fails_verification(engine, receiver):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = _account_with_webhook(session, receiver.url)
        webhooks.send_test_event(session, actor)
        session.commit()
        secret = billing_settings(session, account.id).webhook_secret
    run_due_jobs(engine)
    ((headers, body),) = receiver.requests
    assert Webhook(secret).verify(body, headers)["type"] == "test"
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(body.replace(b"test", b"tset"), headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_logged(engine, receiver):
    receiver.status = 500
    before = {
        result: sample("ledgerdesk_webhook_delivery_attempts_total", result=result)
        for result in ("http_5xx", "delivered")
    }
    retried = sample("ledgerdesk_job_failures_total", kind="deliver_webhook", final="false")
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, receiver.url)
        webhooks.send_test_event(session, actor)
        session.commit()
    clock = [utcnow()]
    assert run_due_jobs(engine, now=lambda: clock[0]) == 1
    assert run_due_jobs(engine, now=lambda: clock[0] + timedelta(seconds=1)) == 0  # backing off
    with Session(engine) as session:
        first_retry = session.exec(select(Job).where(Job.kind == "deliver_webhook")).one().run_at
    clock[0] += timedelta(seconds=2)
    assert first_retry == clock[0]
    assert run_due_jobs(engine, now=lambda: clock[0]) == 1
    with Session(engine) as session:
        second_retry = session.exec(select(Job).where(Job.kind == "deliver_webhook")).one().run_at
    assert second_retry == clock[0] + timedelta(seconds=4)  # exponential

    receiver.status = 204
    clock[0] = second_retry
    run_due_jobs(engine, now=lambda: clock[0])
    assert [(a.status_code, a.error) for a in _attempts(engine)] == [(500, "HTTP 500"), (500, "HTTP 500"), (204, "")]
    # Counted for /metrics: two 5xx answers and one delivery, each failed attempt a failed job run.
    assert sample("ledgerdesk_webhook_delivery_attempts_total", result="http_5xx") == before["http_5xx"] + 2
    assert sample("ledgerdesk_webhook_delivery_attempts_total", result="delivered") == before["delivered"] + 1
    assert sample("ledgerdesk_job_failures_total", kind="deliver_webhook", final="false") == retried + 2
    assert [(d.status, d.attempts, d.last_status_code) for d in _deliveries(engine)] == [("delivered", 3, 204)]
    assert len(receiver.requests) == 3
    assert len({headers["webhook-id"] for headers, _ in receiver.requests}) == 1  # a retry is the same message


def test_after_sixteen_failed_attempts_the_delivery_is_given_up(engine, receiver):
    receiver.status = 503
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, receiver.url)
        webhooks.send_test_event(session, actor)
        session.commit()
    clock = [utcnow()]
    for _ in range(20):
        run_due_jobs(engine, now=lambda: clock[0])
        clock[0] += timedelta(hours=1)
    assert [(d.status, d.attempts, d.last_status_code) for d in _deliveries(engine)] == [("failed", 16, 503)]
    assert [a.status_code for a in _attempts(engine)] == [503] * 16
    with Session(engine) as session:
        assert session.exec(select(Job.status).where(Job.kind == "deliver_webhook")).one() == "done"


def test_an_unreachable_receiver_is_an_attempt_without_status_code(engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/gone"
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, url)
        webhooks.send_test_event(session, actor)
        session.commit()
    run_due_jobs(engine)
    (attempt,) = _attempts(engine)
    assert attempt.status_code is None and "ConnectError" in attempt.error
    assert [(d.status, d.attempts) for d in _deliveries(engine)] == [("pending", 1)]


def test_a_receiver_down_for_an_hour_gets_every_notification_once_it_is_back(engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks"
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, url)
        sent = [webhooks.send_test_event(session, actor).public_id for _ in range(3)]
        session.commit()
    clock = [utcnow()]
    for _ in range(12):  # an hour of retries into a closed port
        run_due_jobs(engine, now=lambda: clock[0])
        clock[0] += timedelta(minutes=5)
    assert {(d.status, d.last_status_code) for d in _deliveries(engine)} == {("pending", None)}
    assert all("ConnectError" in attempt.error for attempt in _attempts(engine))

    receiver = Receiver(port)
    try:
        clock[0] += timedelta(hours=1)
        run_due_jobs(engine, now=lambda: clock[0])
        assert sorted(headers["webhook-id"] for headers, _ in receiver.requests) == sorted(sent)
        assert {d.status for d in _deliveries(engine)} == {"delivered"}
        clock[0] += timedelta(hours=6)
        run_due_jobs(engine, now=lambda: clock[0])
        assert len(receiver.requests) == 3  # delivered once each
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_the_signing_secret_is_standard_and_stable(session):
    actor, account = owner_and_account(session)
    secret = spend.webhook_secret(session, actor)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert spend.webhook_secret(session, actor) == secret
    session.commit()
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        spend.webhook_secret(session, member)


def test_a_test_event_needs_a_saved_url_and_billing_manage(session):
    actor, account = owner_and_account(session)
    with pytest.raises(ValidationFailed, match="Save a webhook URL first"):
        webhooks.send_test_event(session, actor)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    settings = billing_settings(session, account.id)
    settings.webhook_url = "https://hooks.example.com/x"
    session.add(settings)
    with pytest.raises(PermissionDenied):
        webhooks.send_test_event(session, member)
    delivery = webhooks.send_test_event(session, actor)
    session.commit()
    assert json.loads(delivery.payload)["data"]["account_id"] == session.get(Account, account.id).public_id
    assert session.exec(select(Job.dedupe_key).where(Job.kind == "deliver_webhook")).one() == f"webhook:{delivery.id}"


def test_the_delivery_list_shows_the_latest_twenty_of_the_account(session):
    actor, account = owner_and_account(session)
    other_actor, _ = owner_and_account(session, email="other@example.com")
    for owner in (actor, other_actor):
        settings = billing_settings(session, owner.account_id)
        settings.webhook_url = "https://hooks.example.com/x"
        session.add(settings)
    created = [webhooks.send_test_event(session, actor).id for _ in range(22)]
    webhooks.send_test_event(session, other_actor)
    session.commit()
    listed = webhooks.recent_deliveries(session, actor)
    assert [d.id for d in listed] == created[::-1][:20]


@pytest.fixture
def production(monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("LEDGERDESK_PRODUCTION", "true")
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.delenv("LEDGERDESK_PRODUCTION")
    monkeypatch.delenv("ALLOW_PRIVATE_WEBHOOK_URLS", raising=False)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.1.2.3]/hook",
        "http://10.0.0.5/hook",
        "http://172.16.4.4/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0:9000/hook",
        # IPv6 addresses that forward to a private IPv4 address: NAT64, 6to4, IPv4-compatible
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2002:7f00:1::1]/hook",
        "http://[2002:a00:5::]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[::10.0.0.5]/hook",
    ],
)
def test_in_production_a_webhook_cannot_target_loopback_or_private_addresses(production, url):
    with pytest.raises(ValidationFailed) as refused:
        webhooks.validate_url(url)
    assert refused.value.message == "The webhook URL cannot point at a loopback, private or link-local address."
    assert refused.value.field == "webhook_url"


def test_in_production_a_public_address_is_accepted_and_one_setting_allows_private_ones(production):
    assert webhooks.validate_url("https://93.184.215.14/hook") == "https://93.184.215.14/hook"
    for wrapped in ("http://[64:ff9b::5db8:d70e]/hook", "http://[2002:5db8:d70e::1]/hook"):
        assert webhooks.validate_url(wrapped) == wrapped
    with pytest.raises(ValidationFailed, match="could not be resolved"):
        webhooks.validate_url("https://no-such-host.invalid/hook")
    production.setenv("ALLOW_PRIVATE_WEBHOOK_URLS", "true")
    from app.config import get_settings

    get_settings.cache_clear()
    assert webhooks.validate_url("http://10.0.0.5/hook") == "http://10.0.0.5/hook"


def test_outside_production_private_targets_are_allowed_for_local_receivers():
    assert webhooks.validate_url("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"


def test_a_saved_target_that_is_private_in_production_is_never_called(engine, receiver, production):
    production.setenv("ALLOW_PRIVATE_WEBHOOK_URLS", "true")
    from app.config import get_settings

    get_settings.cache_clear()
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, receiver.url)
        webhooks.send_test_event(session, actor)
        session.commit()
    production.delenv("ALLOW_PRIVATE_WEBHOOK_URLS")
    get_settings.cache_clear()
    run_due_jobs(engine)
    assert receiver.requests == []
    (attempt,) = _attempts(engine)
    assert (attempt.status_code, attempt.error) == (
        None,
        "The webhook URL cannot point at a loopback, private or link-local address.",
    )


def test_the_post_connects_to_the_address_that_was_checked(engine, receiver, production, monkeypatch):
    """DNS rebinding: the name answers a public address to the check and a private one later. The
    POST goes to the checked address (here the receiver stands in for it), resolved once, with
    the URL's own Host header."""
    port = receiver.server.server_address[1]
    checked, rebound = "93.184.215.14", "10.0.0.5"
    answers = iter([checked])
    resolved, connected = [], []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, *args, **kwargs):
        if host != "hooks.example.test":
            return real_getaddrinfo(host, *args, **kwargs)
        resolved.append(host)
        address = next(answers, rebound)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    def create_connection(address, *args, **kwargs):
        host, target_port = address
        connected.append(host)
        if host != checked:
            raise ConnectionRefusedError(f"{host} is not the checked address")
        return real_connect(("127.0.0.1", target_port), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    url = f"http://hooks.example.test:{port}/hooks/ledgerdesk"
    with Session(engine, expire_on_commit=False) as session:
        actor, _ = _account_with_webhook(session, url)
        resolved.clear()
        answers = iter([checked])
        webhooks.send_test_event(session, actor)
        session.commit()
    run_due_jobs(engine)
    assert connected == [checked] and resolved == ["hooks.example.test"]
    ((headers, _),) = receiver.requests
    assert {name.lower(): value for name, value in headers.items()}["host"] == f"hooks.example.test:{port}"
    (attempt,) = _attempts(engine)
    assert attempt.status_code == 200
