"""DATABASE_REPLICA_URL: the reporting pages (Balance History and its CSV, Usage and its CSV, the
Invoices list, the Audit Log) read a streaming replica; every change, and the actor behind each
page, stay on the primary. Here the "replica" is a second database holding different rows than
the primary, so what a page shows says which database it read. A replica that does not answer
costs a warning, not the page; /api/ready reports it and stays ready."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

import pytest
import reflex as rx
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InternalError
from sqlmodel import Session, select

from app import cli, db, pages  # noqa: F401  pages registers every page state
from app.api import create_api
from app.api import health as health_api
from app.config import ConfigError, get_settings
from app.db import get_engine, get_replica_engine, make_engine, reporting_transaction
from app.migrations import upgrade_to_head
from app.models import AuditEvent, BillingSettings, utcnow
from app.pages.audit_log import AuditLogState
from app.pages.balance_history import BalanceHistoryState
from app.pages.invoices import InvoicesState
from app.pages.usage import UsageState
from app.services import audit, health, invoices, ledger, spend
from app.services.permissions import Permission
from app.state import session as console
from tests.conftest import _create_pg_database, _drop_pg_database, _wipe
from tests.factories import owner_and_account, signed_in_token

S = TypeVar("S", bound=rx.State)
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/replica"


@pytest.fixture(scope="module")
def replica_url(postgres_url) -> Iterator[str]:
    url = _create_pg_database()
    upgrade_to_head(url)
    yield url
    _drop_pg_database(url)


@dataclass
class Console:
    """The console's databases as `app.cli serve` would open them, and a signed-in tab."""

    primary: Engine
    replica: Engine
    cookie: str

    def use_replica(self, monkeypatch, url: str) -> None:
        monkeypatch.setenv("DATABASE_REPLICA_URL", url)
        _read_settings_again()


def _read_settings_again() -> None:
    for cached in (get_settings, get_engine, get_replica_engine):
        cached.cache_clear()


def _fill(session: Session, where: str, cents: int) -> None:
    """The owner's account (id 1 in either database) with a grant, a usage debit, an audit entry and
    a paid invoice, each naming the database it was written to."""
    actor, account = owner_and_account(session)
    assert account.id == 1
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=cents,
        source="grant",
        description=f"Grant on the {where}",
        idempotency_key=f"grant:{where}",
    )
    ledger.debit_usage(
        session,
        account_id=account.id,
        amount_cents=cents // 100,
        description=f"calls on the {where}",
        idempotency_key=where,
    )
    audit.record(session, actor, "billing.settings", f"Changed on the {where}")
    invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[invoices.LineItem("Usage", cents)],
        idempotency_key=f"period:{where}",
        status="open",
        due_at=utcnow() + timedelta(days=14),
    )
    session.commit()


@pytest.fixture
def two_databases(postgres_url, replica_url, monkeypatch) -> Iterator[Console]:
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.delenv("DATABASE_REPLICA_URL", raising=False)
    monkeypatch.setattr(db, "replica_down", db._ReplicaDown())
    _read_settings_again()
    primary, replica = make_engine(postgres_url), make_engine(replica_url)
    for engine, where, cents in ((primary, "primary", 1_200), (replica, "replica", 7_700)):
        _wipe(engine)
        with Session(engine) as session:
            _fill(session, where, cents)
    with Session(primary) as session:
        cookie = f"ld_session={signed_in_token(session, 'owner@example.com')}"
        session.commit()
    yield Console(primary, replica, cookie)
    for engine in (primary, replica, get_engine(), get_replica_engine()):
        if engine is not None:
            engine.dispose()
    monkeypatch.undo()
    _read_settings_again()


def _run(state: rx.State, handler: str):
    """An event handler as Reflex runs it: every update a generator yields, then its return value."""
    result = type(state).event_handlers[handler].fn(state)
    if hasattr(result, "__next__"):
        return list(result)
    return result


def _page(cls: type[S], cookie: str, path: str) -> S:
    async def load() -> S:
        root = rx.State(_reflex_internal_init=True)
        root.router_data = root._update_router_vars(
            {"headers": {"cookie": cookie}, "pathname": path, "asPath": path}, {}
        )
        return await root.get_state(cls)

    return asyncio.run(load())


def _downloaded(spec) -> str:
    """The file an rx.download hands the browser (a data: URL)."""
    url = dict((name._js_expr, value) for name, value in spec.args)["url"]._var_value
    return base64.b64decode(url.partition("base64,")[2]).decode()


def _shown(tab: Console) -> dict[str, str]:
    """What each reporting page and export shows of the databases' rows: which database it read."""
    history = _page(BalanceHistoryState, tab.cookie, "/balance-history")
    _run(history, "load")
    history_csv = _run(history, "export_csv")
    usage = _page(UsageState, tab.cookie, "/usage?by=description")
    _run(usage, "load")
    usage_csv = _run(usage, "export_csv")
    invoice_list = _page(InvoicesState, tab.cookie, "/invoices")
    _run(invoice_list, "load")
    audit_log = _page(AuditLogState, tab.cookie, "/audit-log")
    _run(audit_log, "load")
    for state in (history, usage, invoice_list, audit_log):
        assert state.error == "", state.error
    return {
        "balance history": history.rows[-1].description,
        "balance history csv": _downloaded(history_csv),
        "usage": usage.rows[0].name,
        "usage csv": _downloaded(usage_csv),
        "invoices": invoice_list.due[0].amount,
        "audit log": audit_log.rows[0].summary,
    }


def _read(shown: dict[str, str]) -> dict[str, str]:
    def which(value: str) -> str:
        if "replica" in value or "$77.00" in value:
            return "replica"
        if "primary" in value or "$12.00" in value:
            return "primary"
        return f"neither: {value[:200]}"

    return {page: which(value) for page, value in shown.items()}


def test_with_a_replica_the_reporting_pages_read_it_and_changes_go_to_the_primary(two_databases, monkeypatch):
    tab = two_databases
    tab.use_replica(monkeypatch, str(tab.replica.url.render_as_string(hide_password=False)))
    assert set(_read(_shown(tab)).values()) == {"replica"}, _read(_shown(tab))

    # A change the same tab makes: written to the primary only.
    tab_state = _page(BalanceHistoryState, tab.cookie, "/balance-history")
    with console.acting(tab_state, Permission.BILLING_MANAGE) as (actor, session):
        spend.save_settings(session, actor, enabled=True, daily_budget="5", notify_threshold="", webhook_url="")
    budgets = {}
    for where, engine in (("primary", tab.primary), ("replica", tab.replica)):
        with Session(engine) as session:
            budgets[where] = session.exec(select(BillingSettings.daily_budget_cents)).one()
    assert budgets == {"primary": 500, "replica": None}


def test_without_a_replica_every_page_reads_the_primary(two_databases):
    assert set(_read(_shown(two_databases)).values()) == {"primary"}


def test_a_sqlite_console_has_no_replica(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/ledgerdesk-never-opened.db")
    monkeypatch.setenv("DATABASE_REPLICA_URL", CLOSED_PORT_URL)
    _read_settings_again()
    try:
        assert get_replica_engine() is None
    finally:
        monkeypatch.undo()
        _read_settings_again()


def _ready(tab: Console):
    """/api/ready as an orchestrator asks, on the console's databases (a job worker beat just now)."""
    health.beat(tab.primary, "web-1:42")
    api = create_api()
    api.dependency_overrides[health_api.health_engine] = lambda: tab.primary
    return TestClient(api).get("/api/ready")


def test_a_replica_that_does_not_answer_costs_a_warning_not_the_pages(two_databases, monkeypatch, caplog):
    tab = two_databases
    tab.use_replica(monkeypatch, CLOSED_PORT_URL)
    with caplog.at_level(logging.WARNING, logger="ledgerdesk.db"):
        assert set(_read(_shown(tab)).values()) == {"primary"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "ledgerdesk.db"]
    assert len(warnings) == 1, warnings
    assert "the read replica does not answer" in warnings[0] and "127.0.0.1" in warnings[0] and "port 1" in warnings[0]

    answer = _ready(tab)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert body["checks"]["replica"]["status"] == "down"
    assert "the reporting pages read the primary" in body["checks"]["replica"]["detail"]


def test_ready_reports_a_replica_that_answers(two_databases, monkeypatch):
    tab = two_databases
    answer = _ready(tab)
    assert answer.status_code == 200 and "replica" not in answer.json()["checks"]
    tab.use_replica(monkeypatch, str(tab.replica.url.render_as_string(hide_password=False)))
    answer = _ready(tab)
    assert answer.status_code == 200 and answer.json()["checks"]["replica"] == {"status": "ok"}


def test_a_reporting_session_refuses_writes_on_the_replica_and_on_the_primary(two_databases, monkeypatch):
    tab = two_databases
    for url in ("", str(tab.replica.url.render_as_string(hide_password=False))):
        tab.use_replica(monkeypatch, url)
        with pytest.raises(db.ReportingWrite), reporting_transaction() as session:
            session.add(AuditEvent(account_id=1, action="billing.settings", summary="Sneaky"))
            session.flush()
        # Also what the session guard cannot see: PostgreSQL refuses it in a read-only transaction.
        with pytest.raises(InternalError, match="read-only transaction"), reporting_transaction() as session:
            session.execute(text("delete from audit_event"))
    for where, engine in (("primary", tab.primary), ("replica", tab.replica)):
        with Session(engine) as session:
            assert [e.summary for e in session.exec(select(AuditEvent))] == [f"Changed on the {where}"]


def test_start_up_counts_the_replica_pool_against_the_replica_not_the_primary(postgres_url, replica_url, capsys):
    with make_engine(postgres_url).connect() as connection:
        allowed = connection.execute(
            text(
                "select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            )
        ).scalar_one()
    # The primary's pools fill it exactly; the replica's pool on top of them would not fit.
    pool = allowed * 2 // 3
    settings = replace(
        get_settings(),
        database_url=postgres_url,
        database_replica_url=replica_url,
        database_pool_size=pool,
        metering_pool_size=allowed - pool,
        redis_url="",
    )
    cli.check_configuration(settings, 1)
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match="may open"):
        cli.check_configuration(replace(settings, metering_pool_size=allowed - pool + 1), 1)

    # A replica that does not answer at start-up: a warning, and the console starts.
    cli.check_configuration(replace(settings, database_replica_url=CLOSED_PORT_URL), 1)
    warning = capsys.readouterr().err
    assert warning.startswith(
        "Warning: cannot reach the read replica at postgresql+psycopg://postgres@127.0.0.1:1/replica"
    )
    assert warning.endswith("the reporting pages read the primary until it answers\n")
