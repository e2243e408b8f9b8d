"""The request path's SQL filters by account (app/models/distribution.py): every statement the
metering API and the console's page handlers run against an account table names account_id, so
a distributed PostgreSQL routes it to the account's node. Statements are recorded with a
SQLAlchemy `before_cursor_execute` hook while a signed-in session is resolved and the pages'
services and the metering API serve; the metering fast path's hand-written statements (asyncpg
and sqlite3, below SQLAlchemy) are read from app/services/metering.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from app.api import create_api
from app.api import metering as metering_api
from app.models import AuthSession, SQLModel, utcnow
from app.models.distribution import GLOBAL_TABLES
from app.services import (
    api_keys,
    audit,
    auth,
    balance_history,
    billing_overview,
    chat,
    company,
    info,
    invoices,
    metering,
    payment_methods,
    products,
    profile,
    recharge,
    roles,
    spend,
    subscription,
    tax,
    team,
    tokens,
    upcoming,
    usage,
)
from tests.factories import grant, owner_and_account

ACCOUNT_TABLES = {table.name for table in SQLModel.metadata.sorted_tables} - set(GLOBAL_TABLES)
TABLE_REFERENCE = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)


def unscoped(statements: list[str]) -> list[str]:
    """The statements that touch an account table without naming account_id."""
    return [
        statement
        for statement in statements
        if set(TABLE_REFERENCE.findall(statement)) & ACCOUNT_TABLES and "account_id" not in statement
    ]


@pytest.fixture
def recorded(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def test_the_checker_sees_a_statement_without_account_id():
    assert unscoped(["SELECT payment.id FROM payment WHERE payment.public_id = ?"]) != []
    assert unscoped(['SELECT 1 FROM "user" WHERE "user".email = ?']) == []  # a global table
    assert unscoped(["UPDATE credit_balance SET balance_cents = ? WHERE credit_balance.account_id = ?"]) == []


def test_the_console_pages_services_filter_account_tables_by_account(engine, recorded):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, 5_000, description="", key="grant")
        api_keys.create_key(session, actor, "Queries")
        token = tokens.new_secret()
        now = utcnow()
        session.add(
            AuthSession(
                token_hash=tokens.sha256_hex(token),
                user_id=actor.user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        session.commit()
    recorded.clear()
    with Session(engine, expire_on_commit=False) as session:
        actor = auth.actor_for_session_token(session, token)
        assert actor is not None
        billing_overview.overview_view(session, actor)
        balance_history.history_page(session, actor)
        balance_history.history_csv(session, actor)
        usage.usage_view(session, actor, preset="90")
        usage.usage_csv(session, actor, preset="90")
        invoices.history(session, actor)
        invoices.payments_due(session, actor)
        api_keys.key_rows(session, actor)
        audit.events(session, actor)
        audit.people(session, actor)
        company.company_details(session, actor)
        info.account_info(session, actor)
        payment_methods.methods_on_file(session, actor)
        products.catalogue(session, actor)
        profile.profile_view(session, actor)
        recharge.recharge_settings(session, actor)
        roles.roles_view(session, actor, 1)
        spend.spend_view(session, actor)
        subscription.overview(session, actor)
        tax.tax_view(session, actor)
        team.team_view(session, actor, 1)
        upcoming.for_plan(session, actor)
        chat.send(session, actor, "Hello")
        chat.unread(session, actor)
        chat.read(session, actor)
        spend.save_settings(session, actor, enabled=True, daily_budget="50", notify_threshold="", webhook_url="")
        session.commit()
    assert len(recorded) > 40
    assert unscoped(recorded) == []


def test_the_metering_api_filters_account_tables_by_account(engine, recorded):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, 1_000, description="", key="grant")
        _, key = api_keys.create_key(session, actor, "Queries")
        session.commit()
    api = create_api()
    api.dependency_overrides[metering_api.metering_engine] = lambda: engine
    headers = {"Authorization": f"Bearer {key}"}
    recorded.clear()
    with TestClient(api) as client:
        # Uneventful, replayed, refused (the full rules' path) and the balance.
        assert client.post("/api/v1/usage", json={"amount_cents": 5}, headers=headers).status_code == 200
        replay = {**headers, "Idempotency-Key": "q-1"}
        assert client.post("/api/v1/usage", json={"amount_cents": 5}, headers=replay).status_code == 200
        assert client.post("/api/v1/usage", json={"amount_cents": 5}, headers=replay).status_code == 200
        assert client.post("/api/v1/usage", json={"amount_cents": 9_999}, headers=headers).status_code == 402
        assert client.get("/api/v1/balance", headers=headers).status_code == 200
    assert unscoped(recorded) == []


def test_the_metering_fast_paths_statements_filter_by_account():
    statements = [value for name, value in vars(metering).items() if name.isupper() or name.startswith("_SQLITE")]
    statements = [value for value in statements if isinstance(value, str) and TABLE_REFERENCE.search(value)]
    assert len(statements) >= 3
    assert unscoped(statements) == []
