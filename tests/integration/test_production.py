"""Production mode at scale, for real: backend processes as production runs them (granian, the
whole app) on one PostgreSQL and one Redis. Two processes enforce one daily budget, one balance and
a key's deletion between them; kill -9 in the middle of metering load loses no acknowledged debit;
a database outage (a proxy that drops every connection and refuses new ones, as a restart does)
makes calls fail with a clean 503 and then recover in the same process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from app.models import ApiKey, LedgerEntry, User
from app.services import api_keys, ledger, spend
from tests.conftest import _PG_REASON
from tests.factories import actor_for, grant, owner_and_account
from tests.live_backend import LiveBackend, free_port, redis_reason

REDIS_URL = "redis://127.0.0.1:6379/7"


pytestmark = pytest.mark.skipif(bool(_PG_REASON or redis_reason()), reason=str(_PG_REASON or redis_reason()))


def _backend(tmp_path, url: str, name: str, **kwargs) -> LiveBackend:
    # Two processes' pools, the tests' own connections and the other test databases' fit in 100.
    env = {"REDIS_URL": REDIS_URL, "RUN_JOBS_IN_APP": "false", "METERING_POOL_SIZE": "16"}
    return LiveBackend(tmp_path / name, url, env=env, **kwargs)


def _funded_key(engine, cents: int, *, daily_budget: str = "") -> tuple[str, int]:
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, cents, description="", key=f"grant:{account.id}")
        if daily_budget:
            spend.save_settings(
                session, actor, enabled=True, daily_budget=daily_budget, notify_threshold="", webhook_url=""
            )
        _, full_key = api_keys.create_key(session, actor, "Production")
        session.commit()
        return full_key, account.id


async def _calls(urls: list[str], key: str, count: int, amount: int = 100) -> list[tuple[str, int, dict]]:
    """`count` concurrent debits, spread over the processes in turn: (process url, status, body)."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:

        async def one(number: int):
            url = urls[number % len(urls)]
            response = await client.post(
                f"{url}/api/v1/usage", json={"amount_cents": amount}, headers={"Authorization": f"Bearer {key}"}
            )
            return url, response.status_code, response.json()

        return await asyncio.gather(*(one(number) for number in range(count)))


def _balance_and_ledger(engine, account_id: int) -> tuple[int, int]:
    with Session(engine) as session:
        return ledger.balance_of(session, account_id), ledger.ledger_sum(session, account_id)


@pytest.fixture(scope="module")
def two_processes(postgres_url, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("two-processes")
    backends = [_backend(tmp_path, postgres_url, name) for name in ("a", "b")]
    for backend in backends:
        backend.launch()
    try:
        for backend in backends:
            backend.wait_until_up()
        yield [backend.url for backend in backends]
    finally:
        for backend in backends:
            backend.stop()


def test_a_daily_budget_holds_across_two_processes(pg_engine, two_processes):
    key, account_id = _funded_key(pg_engine, 100_000, daily_budget="50")
    answers = asyncio.run(_calls(two_processes, key, 120))
    statuses = Counter(status for _, status, _ in answers)
    assert statuses == {200: 50, 429: 70}  # $50 at $1 a call, whichever process answered
    assert {url for url, status, _ in answers if status == 200} == set(two_processes)
    assert {body["error"]["code"] for _, status, body in answers if status == 429} == {"daily_budget_exceeded"}
    assert _balance_and_ledger(pg_engine, account_id) == (95_000, 95_000)


def test_a_balance_is_never_overdrawn_across_two_processes(pg_engine, two_processes):
    key, account_id = _funded_key(pg_engine, 5_000)
    answers = asyncio.run(_calls(two_processes, key, 120))
    assert Counter(status for _, status, _ in answers) == {200: 50, 402: 70}
    assert {url for url, status, _ in answers if status == 200} == set(two_processes)
    assert _balance_and_ledger(pg_engine, account_id) == (0, 0)
    assert sorted(body["balance_cents"] for _, status, body in answers if status == 200) == list(range(0, 5_000, 100))


def test_the_metering_path_answers_with_the_security_headers_and_the_request_id(pg_engine, two_processes):
    """The lean path is dispatched before Reflex's middleware, but inside the security headers."""
    key, _ = _funded_key(pg_engine, 1_000)
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "lean-1"}
    for method, path, body in (
        ("POST", "/api/v1/usage", {"amount_cents": 5}),
        ("POST", "/api/v1/usage/batch", {"events": [{"amount_cents": 5}]}),
        ("GET", "/api/v1/balance", None),
    ):
        response = httpx.request(method, f"{two_processes[0]}{path}", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-Request-Id"] == "lean-1"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_deleted_key_is_refused_at_once_by_every_process(pg_engine, two_processes):
    key, account_id = _funded_key(pg_engine, 5_000)
    assert [status for _, status, _ in asyncio.run(_calls(two_processes, key, 2))] == [200, 200]
    with Session(pg_engine) as session:
        user = session.exec(select(User).where(User.account_id == account_id)).one()
        stored = session.exec(select(ApiKey).where(ApiKey.account_id == account_id)).one()
        api_keys.delete_key(session, actor_for(user, "owner"), stored.public_id)
        session.commit()
    answers = asyncio.run(_calls(two_processes, key, 4))
    assert [(status, body["error"]["code"]) for _, status, body in answers] == [(401, "invalid_api_key")] * 4
    assert _balance_and_ledger(pg_engine, account_id) == (4_800, 4_800)


async def _load(url: str, key: str, clients: int, seconds: float, during=None) -> list[tuple[float, int, dict]]:
    """`clients` callers debiting $1 back to back for `seconds` (or until the process is gone);
    `during` runs alongside. Each answer: (seconds since the start, status, body)."""
    answers: list[tuple[float, int, dict]] = []
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=clients)) as client:

        async def caller() -> None:
            while time.monotonic() - started < seconds:
                try:
                    response = await client.post(
                        f"{url}/api/v1/usage", json={"amount_cents": 100}, headers={"Authorization": f"Bearer {key}"}
                    )
                except httpx.TransportError:
                    return  # the process is gone
                answers.append((time.monotonic() - started, response.status_code, response.json()))

        await asyncio.gather(*(caller() for _ in range(clients)), *([during()] if during else []))
    return answers


def _usage_entries(engine, account_id: int) -> set[str]:
    with Session(engine) as session:
        return set(
            session.exec(
                select(LedgerEntry.public_id).where(LedgerEntry.account_id == account_id, LedgerEntry.source == "usage")
            ).all()
        )


def test_kill_9_in_the_middle_of_metering_load_loses_no_acknowledged_debit(pg_engine, postgres_url, tmp_path):
    grant = 10_000_000
    key, account_id = _funded_key(pg_engine, grant)
    backend = _backend(tmp_path, postgres_url, "killed", workers=2).start()

    async def kill_after_a_second():
        await asyncio.sleep(1.0)
        await asyncio.to_thread(backend.kill)

    try:
        answers = asyncio.run(_load(backend.url, key, clients=32, seconds=20, during=kill_after_a_second))
    finally:
        backend.stop()
    assert backend.process.returncode == -9
    acknowledged = {body["entry_id"] for _, status, body in answers if status == 200}
    assert len(acknowledged) > 50 and max(at for at, _, _ in answers) < 10  # load, then the kill ended it
    entries = _usage_entries(pg_engine, account_id)
    assert acknowledged <= entries  # every 200 is in the ledger; calls cut off may be there too
    balance, ledger_sum = _balance_and_ledger(pg_engine, account_id)
    assert balance == ledger_sum == grant - 100 * len(entries)

    with _backend(tmp_path, postgres_url, "restarted") as again:
        (answer,) = asyncio.run(_calls([again.url], key, 1))
        assert answer[1] == 200 and answer[2]["balance_cents"] == balance - 100


class DatabaseOutageProxy:
    """TCP between the app and PostgreSQL. `outage()` does to the app what a restart does: every
    open connection is cut and new ones are refused, until `restore()`."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def outage(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_a_database_outage_under_load_fails_calls_cleanly_and_the_same_process_recovers(
    pg_engine, postgres_url, tmp_path
):
    grant = 10_000_000
    key, account_id = _funded_key(pg_engine, grant)
    real = make_url(postgres_url)
    proxy = DatabaseOutageProxy(real.host or "127.0.0.1", real.port or 5432)
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    backend = _backend(tmp_path, through_proxy, "outage").start()
    health: list[int] = []

    async def restart_the_database():
        await asyncio.sleep(1.0)
        proxy.outage()
        await asyncio.sleep(0.5)
        health.append((await asyncio.to_thread(httpx.get, f"{backend.url}/api/health", timeout=10)).status_code)
        await asyncio.sleep(1.0)
        proxy.restore()

    try:
        answers = asyncio.run(_load(backend.url, key, clients=16, seconds=5, during=restart_the_database))
        assert backend.process.poll() is None  # never restarted
    finally:
        backend.stop()
        proxy.outage()
    statuses = Counter(status for _, status, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    assert {body["error"]["code"] for _, status, body in answers if status == 503} == {"database_unavailable"}
    assert health == [503]
    outage_ends = max(at for at, status, _ in answers if status == 503)
    assert sum(1 for at, status, _ in answers if status == 200 and at > outage_ends) > 20  # recovered
    acknowledged = {body["entry_id"] for _, status, body in answers if status == 200}
    entries = _usage_entries(pg_engine, account_id)
    assert acknowledged <= entries
    balance, ledger_sum = _balance_and_ledger(pg_engine, account_id)
    assert balance == ledger_sum == grant - 100 * len(entries)
