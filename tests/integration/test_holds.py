"""Holds for long-running calls over HTTP (POST /api/v1/holds, capture, release, expiry) and
per-key daily budgets, on SQLite and PostgreSQL; then races of captures, releases and expiry on
PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from app.errors import PermissionDenied, ValidationFailed
from app.models import Account, ApiKey, AuditEvent, CreditBalance, CreditHold, Job
from app.services import api_keys, holds, ledger
from app.services.overview import overview
from tests.factories import actor_for, make_user
from tests.integration.test_metering_api import NOON, Clock, Customer, _app, assert_error, use


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def api(engine, clock):
    from fastapi.testclient import TestClient

    with TestClient(_app(engine, clock)) as client:
        yield client


def hold(api, customer: Customer, cents: int, ttl: int = 600, description: str = "", **headers):
    return api.post(
        "/api/v1/holds",
        json={"amount_cents": cents, "ttl_seconds": ttl, "description": description},
        headers=customer.headers(**headers),
    )


def capture(api, customer: Customer, hold_id: str, cents: int):
    return api.post(f"/api/v1/holds/{hold_id}/capture", json={"amount_cents": cents}, headers=customer.headers())


def release(api, customer: Customer, hold_id: str):
    return api.post(f"/api/v1/holds/{hold_id}/release", headers=customer.headers())


def held(customer: Customer) -> int:
    with Session(customer.engine) as session:
        row = session.get(CreditBalance, customer.account_id)
        assert row is not None
        return row.held_cents


def test_a_hold_reserves_credits_and_its_capture_debits_once_and_gives_back_the_rest(engine, api):
    customer = Customer(engine, cents=10_000)
    placed = hold(api, customer, 3_000, description="Video render")
    assert placed.status_code == 201, placed.text
    body = placed.json()
    assert body["hold_id"].startswith("hold_") and body["status"] == "open"
    assert (body["amount_cents"], body["balance_cents"], body["held_cents"], body["available_cents"]) == (
        3_000,
        10_000,
        3_000,
        7_000,
    )
    assert body["expires_at"] == "2026-03-10T12:10:00Z"
    # What the hold reserves is not available to anything else: calls, the balance answer, the Overview.
    assert_error(use(api, customer, 7_001), 402, "insufficient_credits")
    assert use(api, customer, 1_000).json()["available_cents"] == 6_000
    balance = api.get("/api/v1/balance", headers=customer.headers()).json()
    assert (balance["remaining_credits_cents"], balance["held_cents"], balance["available_cents"]) == (
        9_000,
        3_000,
        6_000,
    )

    captured = capture(api, customer, body["hold_id"], 2_500)
    assert captured.status_code == 200, captured.text
    answer = captured.json()
    assert answer["status"] == "captured" and (answer["captured_cents"], answer["released_cents"]) == (2_500, 500)
    assert (answer["balance_cents"], answer["held_cents"], answer["available_cents"]) == (6_500, 0, 6_500)
    assert answer["used_today_cents"] == 3_500
    # Sent again (a lost answer), the capture is answered the same and debits nothing more.
    again = capture(api, customer, body["hold_id"], 2_500)
    assert again.json() == answer and again.headers["Idempotent-Replayed"] == "true"
    assert_error(capture(api, customer, body["hold_id"], 100), 409, "hold_closed")
    assert_error(release(api, customer, body["hold_id"]), 409, "hold_closed")
    entries = customer.usage_entries()
    assert [(e.amount_cents, e.description) for e in entries] == [
        (-1_000, "API usage (key: Production)"),
        (-2_500, "Video render"),
    ]
    assert entries[-1].public_id == answer["entry_id"] and entries[-1].api_key_id == customer.key_row.id
    assert customer.balance() == 6_500 and held(customer) == 0


def test_a_capture_of_more_than_the_hold_and_holds_of_other_accounts_are_refused(engine, api):
    customer = Customer(engine, cents=10_000)
    other = Customer(engine, cents=10_000, email="other@example.com")
    hold_id = hold(api, customer, 1_000).json()["hold_id"]
    assert_error(capture(api, customer, hold_id, 1_001), 422, "validation_error")
    assert_error(capture(api, other, hold_id, 10), 404, "hold_not_found")
    assert_error(release(api, other, hold_id), 404, "hold_not_found")
    assert_error(release(api, customer, "hold_NOPE"), 404, "hold_not_found")
    assert_error(api.post(f"/api/v1/holds/{hold_id}/release"), 401, "invalid_api_key")
    assert held(customer) == 1_000 and customer.balance() == 10_000


def test_a_hold_is_refused_as_a_debit_of_its_amount_would_be_and_holds_nothing(engine, api, clock):
    customer = Customer(engine, cents=5_000)
    assert_error(hold(api, customer, 5_001), 402, "insufficient_credits")
    customer.set_limits(daily_budget_cents=2_000)
    refused = hold(api, customer, 2_001)
    assert_error(refused, 429, "daily_budget_exceeded")
    assert int(refused.headers["Retry-After"]) == 12 * 3600
    # Holds count against the budget: 1,500 held leaves 500 of today's 2,000.
    assert hold(api, customer, 1_500).status_code == 201
    assert_error(use(api, customer, 501), 429, "daily_budget_exceeded")
    assert use(api, customer, 500).status_code == 200
    customer.set_limits(daily_budget_cents=None)
    with Session(engine) as session:
        session.exec(update(Account).where(Account.id == customer.account_id).values(suspended_at=clock.now))
        session.commit()
    assert_error(hold(api, customer, 10), 403, "account_suspended")
    with Session(engine) as session:
        session.exec(
            update(Account).where(Account.id == customer.account_id).values(suspended_at=None, plan_code="basic")
        )
        session.commit()
    customer.set_limits(usage_day=clock.now.date(), requests_today=10_000)
    assert_error(hold(api, customer, 10), 429, "daily_request_limit_exceeded")
    assert held(customer) == 1_500 and customer.balance() == 4_500


def test_release_and_expiry_give_everything_back(engine, api, clock):
    customer = Customer(engine, cents=10_000)
    first = hold(api, customer, 4_000).json()["hold_id"]
    released = release(api, customer, first)
    assert released.status_code == 200
    assert released.json()["status"] == "released" and released.json()["released_cents"] == 4_000
    assert release(api, customer, first).json() == released.json()
    assert_error(capture(api, customer, first, 10), 409, "hold_closed")

    second = hold(api, customer, 3_000, ttl=60).json()["hold_id"]
    third = hold(api, customer, 2_000, ttl=60).json()["hold_id"]
    assert held(customer) == 5_000
    clock.now += timedelta(seconds=60)
    # Expired, not yet released by its job: no longer counted where the figures are read...
    balance = api.get("/api/v1/balance", headers=customer.headers()).json()
    assert (balance["held_cents"], balance["available_cents"]) == (0, 10_000)
    # ...a capture comes too late and gives it back itself...
    assert_error(capture(api, customer, second, 3_000), 409, "hold_expired")
    assert held(customer) == 2_000
    # ...and the job, due at its expiry, releases the other, once.
    with Session(engine) as session:
        assert len(session.exec(select(Job).where(Job.kind == "hold_expiry")).all()) == 3
        hold_row = session.exec(select(CreditHold).where(CreditHold.public_id == third)).one()
        holds.expire(session, hold_row.account_id, hold_row.id, now=clock.now)
        holds.expire(session, hold_row.account_id, hold_row.id, now=clock.now)
        session.commit()
        session.refresh(hold_row)
        assert hold_row.status == "expired"
    assert held(customer) == 0 and customer.balance() == 10_000 and customer.usage_entries() == []


def test_a_hold_with_an_idempotency_key_is_placed_once(engine, api):
    customer = Customer(engine, cents=10_000)
    first = hold(api, customer, 1_000, **{"Idempotency-Key": "render-42"})
    again = hold(api, customer, 1_000, **{"Idempotency-Key": "render-42"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_error(hold(api, customer, 2_000, **{"Idempotency-Key": "render-42"}), 409, "idempotency_key_reused")
    assert held(customer) == 1_000


def test_a_keys_daily_budget_refuses_its_calls_while_the_other_keys_keep_working(engine, api, clock):
    customer = Customer(engine, cents=100_000)
    with Session(engine, expire_on_commit=False) as session:
        _, other_key = api_keys.create_key(session, customer.actor, "Batch jobs")
        session.commit()
    assert use(api, customer, 300).status_code == 200
    with Session(engine) as session:
        api_keys.set_daily_budget(session, customer.actor, customer.key_row.public_id, "10", now=clock.now)
        session.commit()
    # The 300 cents used before the budget was set count towards it.
    assert use(api, customer, 400).status_code == 200
    assert hold(api, customer, 200).status_code == 201
    refused = use(api, customer, 101)
    assert_error(refused, 429, "key_budget_exceeded")
    assert int(refused.headers["Retry-After"]) == 12 * 3600
    assert "$1.00 of $10.00 is left today" in refused.json()["error"]["message"]
    assert_error(hold(api, customer, 101), 429, "key_budget_exceeded")
    assert (
        api.post(
            "/api/v1/usage", json={"amount_cents": 5_000}, headers={"Authorization": f"Bearer {other_key}"}
        ).status_code
        == 200
    )
    batch = api.post(
        "/api/v1/usage/batch", json={"events": [{"amount_cents": 100}, {"amount_cents": 1}]}, headers=customer.headers()
    ).json()["results"]
    assert "entry_id" in batch[0] and batch[1]["error"]["code"] == "key_budget_exceeded"
    clock.now += timedelta(days=1)
    assert use(api, customer, 700).status_code == 200
    assert_error(use(api, customer, 101), 429, "key_budget_exceeded")  # the hold of 200 still counts
    with Session(engine) as session:
        key = session.get(ApiKey, customer.key_row.id)
        assert (key.used_today_cents, key.held_cents) == (700, 200)
        [row] = [row for row in api_keys.key_rows(session, customer.actor, clock.now) if row.name == key.name]
        assert row.daily_budget_shown == "$10.00 · $1.00 left today (UTC)"


def test_only_users_who_manage_keys_set_a_key_budget_and_it_is_audited(session):
    from tests.factories import owner_and_account

    actor, account = owner_and_account(session)
    key, _ = api_keys.create_key(session, actor, "Production")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        api_keys.set_daily_budget(session, member, key.public_id, "5")
    with pytest.raises(ValidationFailed) as refused:
        api_keys.set_daily_budget(session, actor, key.public_id, "-5")
    assert refused.value.field == "daily_budget"
    api_keys.set_daily_budget(session, actor, key.public_id, "12.5")
    assert [row.daily_budget for row in api_keys.key_rows(session, actor)] == ["12.50"]
    api_keys.set_daily_budget(session, actor, key.public_id, "")
    assert [row.daily_budget_shown for row in api_keys.key_rows(session, actor)] == ["None"]
    events = session.exec(select(AuditEvent.summary).where(AuditEvent.action == "api_key.budget")).all()
    assert len(events) == 2 and "$12.50" in events[0]


def test_captures_releases_and_expiry_racing_on_postgres_settle_each_hold_once(pg_engine, clock):
    customer = Customer(pg_engine, cents=1_000_000)
    with Session(pg_engine) as session:
        ledger.set_overage_credit_line(session, customer.account_id, 0)
        session.commit()
    placed = []
    with Session(pg_engine, expire_on_commit=False) as session:
        for number in range(40):
            answer = holds.place(
                session, api_key=customer.key, amount_cents=1_000 + number, ttl_seconds=60, now=clock.now
            )
            assert answer.status_code == 201
            placed.append(answer.body["hold_id"])
        session.commit()
    expiry = clock.now + timedelta(seconds=60)
    ids = {}
    with Session(pg_engine) as session:
        for row in session.exec(select(CreditHold)):
            ids[row.public_id] = (row.account_id, row.id)
    outcomes: list[tuple[str, int]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def racer(number: int) -> None:
        rng = random.Random(number)
        start.wait()
        for hold_id in rng.sample(placed, len(placed)):
            kind = rng.choice(["capture", "release", "expire", "debit"])
            try:
                with Session(pg_engine) as session:
                    if kind == "capture":
                        status = holds.capture(
                            session,
                            api_key=customer.key,
                            hold_id=hold_id,
                            amount_cents=500,
                            now=expiry - timedelta(seconds=1),
                        ).status_code
                    elif kind == "release":
                        status = holds.release(
                            session, api_key=customer.key, hold_id=hold_id, now=expiry - timedelta(seconds=1)
                        ).status_code
                    elif kind == "expire":
                        holds.expire(session, *ids[hold_id], now=expiry)
                        status = 0
                    else:
                        from app.services import metering

                        status = metering.record_usage(
                            session, api_key=customer.key, amount_cents=7, now=clock.now
                        ).status_code
                    session.commit()
                with lock:
                    outcomes.append((kind, status))
            except BaseException as error:  # reported below
                with lock:
                    failures.append(error)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Session(pg_engine) as session:
        rows = session.exec(select(CreditHold)).all()
        assert {row.status for row in rows} <= {"captured", "released", "expired", "open"}
        captured = [row for row in rows if row.status == "captured"]
        # Exactly one closing per hold: a captured hold has one usage entry, the others none.
        entries = {e.idempotency_key for e in customer.usage_entries() if e.idempotency_key.startswith("hold:")}
        assert entries == {f"hold:{row.public_id}" for row in captured}
        assert all(row.captured_cents == 500 for row in captured)
        still_open = sum(row.amount_cents for row in rows if row.status == "open")
        balance = session.get(CreditBalance, customer.account_id)
        assert balance.held_cents == still_open >= 0
        assert balance.balance_cents == ledger.ledger_sum(session, customer.account_id)
    debited = outcomes.count(("debit", 200))
    assert debited > 0 and captured and len(captured) < len(placed)
    assert customer.balance() == 1_000_000 - 500 * len(captured) - 7 * debited


def test_holds_and_debits_racing_on_postgres_never_use_more_than_the_balance(pg_engine, clock):
    customer = Customer(pg_engine, cents=20_000)
    with Session(pg_engine) as session:
        ledger.set_overage_credit_line(session, customer.account_id, 0)
        session.commit()
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def racer(number: int) -> None:
        from app.services import metering

        rng = random.Random(number)
        start.wait()
        for _ in range(25):
            try:
                with Session(pg_engine) as session:
                    if rng.random() < 0.5:
                        holds.place(session, api_key=customer.key, amount_cents=rng.randint(100, 900), now=clock.now)
                    else:
                        metering.record_usage(
                            session, api_key=customer.key, amount_cents=rng.randint(100, 900), now=clock.now
                        )
                    session.commit()
            except BaseException as error:  # reported below
                failures.append(error)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Session(pg_engine) as session:
        row = session.get(CreditBalance, customer.account_id)
        open_held = sum(h.amount_cents for h in session.exec(select(CreditHold).where(CreditHold.status == "open")))
        assert row.held_cents == open_held > 0
        assert row.balance_cents - row.held_cents >= 0
        assert row.balance_cents == ledger.ledger_sum(session, customer.account_id)
        assert overview(session, customer.account_id, clock.now).available_to_use == row.balance_cents - row.held_cents
