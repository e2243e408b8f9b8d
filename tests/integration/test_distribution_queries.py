"""The request path's SQL filters by account (app/models/distribution.py): every statement the
metering API and the console's page handlers run against an account table names account_id, so
a distributed PostgreSQL routes it to the account's node. Statements are recorded with a
SQLAlchemy `before_cursor_execute` hook while a signed-in session is resolved and the pages'
services, the metering API and Stripe's webhooks serve; the metering fast path's hand-written
statements (asyncpg and sqlite3, below SQLAlchemy) are read from app/services/metering.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session, select

from app.api import create_api
from app.api import metering as metering_api
from app.models import AuthSession, LedgerEntry, Payment, TaxRegistration, utcnow
from app.payments import gateway
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
    ledger,
    metering,
    payment_methods,
    products,
    profile,
    recharge,
    reconciliation,
    roles,
    spend,
    stripe_events,
    subscription,
    tax,
    team,
    tokens,
    upcoming,
    usage,
)
from app.services.customers import account_of
from tests.distribution import TABLE_REFERENCE, request_path_caller, unscoped
from tests.factories import grant, owner_and_account


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
    # Selecting the column filters nothing.
    assert unscoped(["SELECT payment.account_id FROM payment WHERE payment.public_id = ?"]) != []
    assert unscoped(['SELECT 1 FROM "user" WHERE "user".email = ?']) == []  # a global table
    assert unscoped(["UPDATE credit_balance SET balance_cents = ? WHERE credit_balance.account_id = ?"]) == []


def test_the_suite_wide_check_names_the_request_paths_code_and_leaves_the_janitor_out(engine):
    """What tests/integration/conftest.py blames for a statement: the innermost app function; none
    for the reconciliation sweep (a job's, across accounts) or for the test's own statements."""
    callers: list[str | None] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if TABLE_REFERENCE.search(statement):
            callers.append(request_path_caller())

    with Session(engine) as session:
        account_id = owner_and_account(session).account.id
        event.listen(engine, "before_cursor_execute", record)
        ledger.balance_of(session, account_id)
        reconciliation.sweep(session)
        session.exec(select(Payment)).all()
        event.remove(engine, "before_cursor_execute", record)
    assert callers[0] == "app/services/ledger.py:balance_of"
    assert set(callers[1:]) == {None}


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


CUSTOMER = "cus_distributed"


def _stripe_rows(session: Session, monkeypatch) -> int:
    """An account with a Stripe customer, four payments waiting for Stripe (two card intents, one
    whose intent id the request never learnt, one crypto Checkout Session) and a tax ID; Stripe
    knows the Checkout Session's intent as the customer's (a dispute names no customer)."""
    _, account = owner_and_account(session)
    account_of(session, account.id).stripe_customer_id = CUSTOMER
    for key, method, intent, checkout in (
        ("q1", "card", "pi_q1", None),
        ("q2", "card", "pi_q2", None),
        ("q4", "card", None, None),
        ("q3", "crypto", None, "cs_q3"),
    ):
        session.add(
            Payment(
                public_id=f"pay_{key}",
                account_id=account.id,
                amount_cents=2500,
                method=method,
                status="requires_action",
                stripe_payment_intent_id=intent,
                stripe_checkout_session_id=checkout,
                idempotency_key=f"{method}:{key}",
            )
        )
    session.add(
        TaxRegistration(account_id=account.id, country="DE", type="eu_vat", value="DE136695976", stripe_tax_id="txi_q")
    )
    session.commit()
    monkeypatch.setattr(gateway, "payment_intent_customer", lambda intent: CUSTOMER if intent == "pi_q3" else "")
    return account.id


def _events(account_id: int, customer: str) -> list[tuple[str, dict]]:
    """The main webhook events for `_stripe_rows`' payments and tax ID, as the customer's."""

    def intent(intent_id: str) -> dict:
        return {"id": intent_id, "object": "payment_intent", "amount": 2500, "currency": "usd", "customer": customer}

    lost = {"metadata": {"payment_id": "pay_q4", "account_id": str(account_id)}}
    checkout = {"id": "cs_q3", "object": "checkout.session", "amount_total": 2500, "currency": "usd"}
    charge = {"id": "ch_q1", "object": "charge", "payment_intent": "pi_q1", "amount": 2500, "currency": "usd"}
    dispute = {"id": "dp_q3", "object": "dispute", "payment_intent": "pi_q3", "amount": 2500, "currency": "usd"}
    return [
        ("payment_intent.succeeded", intent("pi_q1")),
        ("payment_intent.payment_failed", intent("pi_q2")),
        ("payment_intent.succeeded", {**intent("pi_q4"), **lost}),
        (
            "checkout.session.completed",
            {**checkout, "customer": customer, "payment_status": "paid", "payment_intent": "pi_q3"},
        ),
        ("charge.refunded", {**charge, "customer": customer, "amount_refunded": 1000}),
        ("charge.dispute.created", {**dispute, "status": "needs_response"}),
        (
            "customer.tax_id.updated",
            {"id": "txi_q", "object": "tax_id", "customer": customer, "verification": {"status": "verified"}},
        ),
    ]


def _handle(engine, events: list[tuple[str, dict]]) -> None:
    for number, (kind, stripe_object) in enumerate(events):
        with Session(engine, expire_on_commit=False) as session:
            event = {"id": f"evt_{stripe_object['id']}_{number}", "type": kind, "data": {"object": stripe_object}}
            assert stripe_events.record_and_handle(session, event)
            session.commit()


def _state(session: Session, account_id: int) -> tuple:
    session.expire_all()
    statuses = session.exec(select(Payment.public_id, Payment.status).where(Payment.account_id == account_id)).all()
    ledger = session.exec(select(LedgerEntry.amount_cents).where(LedgerEntry.account_id == account_id)).all()
    tax_id = session.exec(select(TaxRegistration.status).where(TaxRegistration.account_id == account_id)).one()
    return sorted(statuses), sorted(ledger), tax_id


def test_stripes_webhooks_find_the_account_first_then_its_rows_by_account(engine, recorded, monkeypatch):
    with Session(engine, expire_on_commit=False) as session:
        account_id = _stripe_rows(session, monkeypatch)
    recorded.clear()
    _handle(engine, _events(account_id, CUSTOMER))
    with Session(engine) as session:
        assert _state(session, account_id) == (
            [("pay_q1", "partially_refunded"), ("pay_q2", "failed"), ("pay_q3", "disputed"), ("pay_q4", "succeeded")],
            [-2500, -1000, 2500, 2500, 2500],
            "verified",
        )
    assert unscoped(recorded) == []


def test_an_event_for_a_customer_we_do_not_know_changes_nothing(engine, monkeypatch, caplog):
    """Even one whose metadata names our payment: the customer is not the account's."""
    with Session(engine, expire_on_commit=False) as session:
        account_id = _stripe_rows(session, monkeypatch)
        before = _state(session, account_id)
    monkeypatch.setattr(gateway, "payment_intent_customer", lambda intent: "cus_someone_else")
    _handle(engine, _events(account_id, "cus_someone_else"))
    with Session(engine) as session:
        assert _state(session, account_id) == before
    assert "matches no payment of ours" in caplog.text
