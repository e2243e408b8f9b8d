"""The metering API debits uneventful calls in one statement (app/services/metering.py) and leaves
everything else to the ledger. Held to `ledger.debit_usage` itself: two accounts with the same
limits (holds held and a key budget included) get the same random calls, one through the API, one
straight through the ledger, and must end every step with the same answer, metering row, key
counters and background jobs."""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from app.api import metering as metering_api
from app.models import Account, ApiKey, CreditBalance
from app.services import ledger, metering
from app.services.ledger import DailyBudgetExceeded, InsufficientCredits, KeyBudgetExceeded
from app.services.plans import get_plan
from tests.integration.test_metering_api import Clock, Customer, _app

START = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
ROW = (
    "balance_cents",
    "overage_credit_line_cents",
    "usage_day",
    "used_today_cents",
    "threshold_notified_on",
    "budget_notified_on",
    "recharge_in_flight",
    "recharge_seq",
    "held_cents",
)
KEY_ROW = ("daily_budget_cents", "usage_day", "used_today_cents", "held_cents")


def _row(engine, account_id: int) -> tuple:
    with Session(engine) as session:
        row = session.get(CreditBalance, account_id)
        key = session.exec(select(ApiKey).where(ApiKey.account_id == account_id)).one()
        return tuple(getattr(row, column) for column in ROW) + tuple(getattr(key, column) for column in KEY_ROW)


def _set_key(customer: Customer, **values) -> None:
    with Session(customer.engine) as session:
        session.exec(update(ApiKey).where(ApiKey.id == customer.key_row.id).values(**values))
        session.commit()


def _jobs(customer: Customer) -> list[tuple]:
    notifications = [
        (j["kind"], j["day"], j["used_cents"], j["line_cents"]) for j in customer.jobs("spend_notification")
    ]
    return sorted(notifications) + sorted(("recharge", j["seq"]) for j in customer.jobs("auto_recharge"))


def _through_ledger(
    engine, account_id: int, cents: int, key: str, now: datetime, api_key_id: int | None = None
) -> tuple[int, int | None]:
    """The status the API would answer and the available_cents of a debit; the transaction is
    committed on a refusal too, as the API commits it (a budget refusal may start the budget
    notification)."""
    available = None
    with Session(engine) as session:
        try:
            _, after = ledger.debit_usage(
                session, account_id=account_id, amount_cents=cents, idempotency_key=key, now=now, api_key_id=api_key_id
            )
            status, available = 200, after.available_cents if after else None
        except (DailyBudgetExceeded, KeyBudgetExceeded):
            status = 429
        except InsufficientCredits:
            status = 402
        session.commit()
    return status, available


@pytest.mark.parametrize("seed", [1, 3])
def test_the_api_debits_exactly_like_the_ledger(engine, seed, monkeypatch):
    left_to_the_ledger = []
    record_usage = metering.record_usage
    monkeypatch.setattr(
        metering, "record_usage", lambda *args, **kwargs: left_to_the_ledger.append(1) or record_usage(*args, **kwargs)
    )
    rng = random.Random(seed)
    # Their own draws, so that the walk's calls stay the same.
    holds_and_key_budgets = random.Random(-seed)
    refusals: set[str] = set()
    debited_in_one_statement = 0
    answered_with_keys: list[tuple[str, int, dict]] = []
    clock = Clock(START)
    via_api = Customer(engine, cents=3_000)
    via_ledger = Customer(engine, cents=3_000, email="ledger@example.com")
    with TestClient(_app(engine, clock)) as api:
        for step in range(240):
            roll = rng.random()
            if roll < 0.08:
                limits = {
                    "daily_budget_cents": rng.choice([None, 300, 800]),
                    "daily_notify_threshold_cents": rng.choice([None, 150, 500]),
                    "recharge_threshold_cents": rng.choice([None, 2_500, 3_500]),
                    "overage_credit_line_cents": rng.choice([0, 200]),
                    # As if holds of this much were open.
                    "held_cents": holds_and_key_budgets.choice([0, 0, 250]),
                }
                via_api.set_limits(**limits)
                via_ledger.set_limits(**limits)
                key_budget = holds_and_key_budgets.choice([None, 200])
                _set_key(via_api, daily_budget_cents=key_budget)
                _set_key(via_ledger, daily_budget_cents=key_budget)
            elif roll < 0.13:
                # The recharge job finished: another recharge may start.
                via_api.set_limits(recharge_in_flight=False)
                via_ledger.set_limits(recharge_in_flight=False)
            elif roll < 0.17:
                via_api.add_credits(1_000, f"api-topup-{seed}-{step}")
                via_ledger.add_credits(1_000, f"ledger-topup-{seed}-{step}")
            elif roll < 0.25 and answered_with_keys:
                # A retry: the same body gets the first answer again, another body a 409; no money moves.
                key, cents, first = rng.choice(answered_with_keys)
                same = rng.random() < 0.7
                retry = api.post(
                    "/api/v1/usage",
                    json={"amount_cents": cents if same else cents + 1},
                    headers=via_api.headers(**{"Idempotency-Key": key}),
                )
                if same:
                    assert (retry.status_code, retry.json()) == (200, first)
                    assert retry.headers["Idempotent-Replayed"] == "true"
                else:
                    assert retry.status_code == 409
            else:
                clock.now += timedelta(minutes=rng.randint(0, 90))
                cents = rng.randint(1, 120)
                key = f"call-{step}" if rng.random() < 0.4 else None
                before = len(left_to_the_ledger)
                response = api.post(
                    "/api/v1/usage",
                    json={"amount_cents": cents},
                    headers=via_api.headers(**({"Idempotency-Key": key} if key else {})),
                )
                expected, available = _through_ledger(
                    engine, via_ledger.account_id, cents, f"ledger-{seed}-{step}", clock.now, via_ledger.key_row.id
                )
                assert response.status_code == expected, f"step {step}"
                if response.status_code == 429:
                    refusals.add(response.json()["error"]["code"])
                if response.status_code == 200:
                    assert response.json()["balance_cents"] == via_ledger.balance()
                    assert response.json()["available_cents"] == available, f"step {step}"
                    if key:
                        answered_with_keys.append((key, cents, response.json()))
                debited_in_one_statement += response.status_code == 200 and len(left_to_the_ledger) == before
            assert _row(engine, via_api.account_id) == _row(engine, via_ledger.account_id), f"step {step}"
            assert _jobs(via_api) == _jobs(via_ledger), f"step {step}"
    assert via_api.balance() == via_ledger.balance()
    assert clock.now.date() > START.date()  # the walk crossed UTC midnights
    answered = [e.amount_cents for e in via_api.usage_entries()]
    assert answered == [e.amount_cents for e in via_ledger.usage_entries()] and len(answered) > 50
    # Calls without a description say on Balance History that they came through the API, and by which key.
    assert {e.description for e in via_api.usage_entries()} == {"API usage (key: Production)"}
    # Every debit, in one statement or through the ledger, is attributed to the key it was made with.
    assert {e.api_key_id for e in via_api.usage_entries()} == {via_api.key_row.id}
    kinds = {job[0] for job in _jobs(via_api)}
    assert {"threshold", "budget", "recharge"} <= kinds
    assert {"daily_budget_exceeded", "key_budget_exceeded"} <= refusals
    assert left_to_the_ledger and debited_in_one_statement > len(answered) / 2
    assert len(answered_with_keys) > 10


def test_a_key_of_an_account_without_a_metering_row_still_meters(engine):
    """The fast statement finds no metering row; the ledger creates it with the plan's overage
    line and debits."""
    customer = Customer(engine, cents=0)
    with Session(engine) as session:
        account = session.get(Account, customer.account_id)
        account.plan_code = "pro"
        session.add(account)
        session.commit()
        assert session.get(CreditBalance, customer.account_id) is None
    with TestClient(_app(engine, Clock(START))) as api:
        response = api.post("/api/v1/usage", json={"amount_cents": 5}, headers=customer.headers())
    assert response.status_code == 200
    assert response.json()["balance_cents"] == customer.balance() == -5
    assert response.json()["available_cents"] == get_plan("pro").overage_credit_line_cents - 5


def _expected(engine, twin: Customer, event: dict, seed: int, step: str, now: datetime, first: dict) -> tuple:
    """What a call alone answers, worked out on the ledger twin: (status, balance or None). An
    Idempotency-Key that was answered 200 replays (same amount) or is refused 409 (another)."""
    key = event.get("idempotency_key")
    if key in first:
        amount, body = first[key]
        return (200, body["balance_cents"]) if amount == event["amount_cents"] else (409, None)
    status, _ = _through_ledger(engine, twin.account_id, event["amount_cents"], f"twin-{seed}-{step}", now)
    return status, twin.balance() if status == 200 else None


def test_a_refused_request_leaves_the_others_of_its_group_on_the_fast_path(engine, monkeypatch):
    """Requests of several accounts arrive together and one of them is refused: the group is
    halved until the refused request is alone, so only it goes through the ledger's full rules
    and every other request is still debited by a group commit."""
    fast = metering_api._GroupCommit._fast
    committed: list[set[str]] = []
    left_to_the_ledger: list[set[str]] = []

    async def spied(group, calls):
        keys = {call["api_key"] for call in calls}
        try:
            result = await fast(group, calls)
        except metering.NeedsLedger:
            left_to_the_ledger.append(keys)
            raise
        committed.append(keys)
        return result

    monkeypatch.setattr(metering_api._GroupCommit, "_fast", spied)
    broke = Customer(engine, cents=100, email="broke@example.com")
    payers = [Customer(engine, cents=2_000, email=f"payer{n}@example.com") for n in range(5)]
    app = _app(engine, Clock(START))

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            responses = await asyncio.gather(
                *(
                    client.post("/api/v1/usage", json={"amount_cents": 500}, headers=customer.headers())
                    for customer in [payers[0], payers[1], broke, *payers[2:]]
                )
            )
            await metering_api.close_pools()
        return list(responses)

    statuses = [response.status_code for response in asyncio.run(together())]
    assert statuses == [200, 200, 402, 200, 200, 200]
    assert broke.balance() == 100 and all(payer.balance() == 1_500 for payer in payers)
    assert left_to_the_ledger[0] == {broke.key} | {payer.key for payer in payers}
    assert left_to_the_ledger[-1] == {broke.key}  # alone at last, then through the ledger
    assert all(broke.key not in keys for keys in committed)
    assert sum(len(keys) for keys in committed) == len(payers) and len(committed) < len(payers)


REFUSALS = {
    200: ("ok",),
    402: ("insufficient_credits",),
    409: ("idempotency_key_reused",),
    429: ("daily_budget_exceeded", "daily_request_limit_exceeded"),
}


@pytest.mark.parametrize("seed", [5, 8])
def test_group_commits_of_random_batches_debit_exactly_like_the_ledger(engine, seed, monkeypatch):
    """Concurrent batches and lone calls of several accounts, mixing refusals, replays and reused
    keys, arrive together and are debited in group commits; each account ends every round with
    the answers, metering row and jobs its twin gets from the ledger one call at a time."""
    committed: list[set[str | None]] = []  # each committed group's API keys
    left_to_the_ledger = []
    fast = metering_api._GroupCommit._fast

    async def spied(group, calls):
        try:
            result = await fast(group, calls)
        except metering.NeedsLedger:
            left_to_the_ledger.append(len(calls))
            raise
        committed.append({call["api_key"] for call in calls})
        return result

    monkeypatch.setattr(metering_api._GroupCommit, "_fast", spied)
    rng = random.Random(seed)
    clock = Clock(START)
    pairs = [
        (Customer(engine, cents=2_000, email=f"api{n}@example.com"), Customer(engine, cents=2_000, email=f"l{n}@x.io"))
        for n in range(3)
    ]
    app = _app(engine, clock)
    first: list[dict] = [{} for _ in pairs]

    async def round_of_calls(requests: list[tuple[int, list[dict], bool]]) -> list:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:

            async def send(pair: int, events: list[dict], alone: bool):
                headers = pairs[pair][0].headers()
                if not alone:
                    response = await client.post("/api/v1/usage/batch", json={"events": events}, headers=headers)
                    return response.json()["results"]
                (event,) = events
                key = event.get("idempotency_key")
                response = await client.post(
                    "/api/v1/usage",
                    json={"amount_cents": event["amount_cents"]},
                    headers={**headers, **({"Idempotency-Key": key} if key else {})},
                )
                return [response.json()]

            results = await asyncio.gather(*(send(*request) for request in requests))
            await metering_api.close_pools()
        return results

    for round_number in range(12):
        for api, twin in pairs:
            if rng.random() < 0.3:
                limits = {
                    "daily_budget_cents": rng.choice([None, 400, 900]),
                    "daily_notify_threshold_cents": rng.choice([None, 200, 600]),
                    "recharge_threshold_cents": rng.choice([None, 1_500]),
                    "recharge_in_flight": False,
                }
                api.set_limits(**limits)
                twin.set_limits(**limits)
            if rng.random() < 0.2:
                api.add_credits(700, f"top-{api.account_id}-{round_number}")
                twin.add_credits(700, f"top-{twin.account_id}-{round_number}")
        clock.now += timedelta(minutes=rng.randint(0, 240))
        # One request per account this round (its events in order), a batch or a lone call.
        requests = []
        for pair in range(len(pairs)):
            alone = rng.random() < 0.3
            events = []
            for _ in range(1 if alone else rng.randint(2, 12)):
                key = rng.choice([None, None, f"k{rng.randint(0, 15)}"])
                # Every other round small calls, which mostly leave the ledger nothing to do.
                cents = rng.randint(1, 150) if round_number % 2 else rng.randint(1, 3)
                events.append({"amount_cents": cents, **({"idempotency_key": key} if key else {})})
            requests.append((pair, events, alone))
        answers = asyncio.run(round_of_calls(requests))
        for (pair, events, _), results in zip(requests, answers, strict=True):
            api, twin = pairs[pair]
            for number, (event, result) in enumerate(zip(events, results, strict=True)):
                step = f"{round_number}-{pair}-{number}"
                status, balance = _expected(engine, twin, event, seed, step, clock.now, first[pair])
                got = "ok" if "entry_id" in result else result["error"]["code"]
                assert got in REFUSALS[status], (step, got, status)
                if status == 200:
                    assert result["balance_cents"] == balance, step
                    key = event.get("idempotency_key")
                    if key and key not in first[pair]:
                        first[pair][key] = (event["amount_cents"], result)
            assert _row(engine, api.account_id) == _row(engine, twin.account_id), round_number
            assert _jobs(api) == _jobs(twin), round_number
    assert any(len(keys) > 1 for keys in committed), "no group of several accounts was committed"
    assert left_to_the_ledger, "no group needed the ledger's full rules"
    for api, twin in pairs:
        assert api.balance() == twin.balance()  # and each equals its ledger sum
        assert [e.amount_cents for e in api.usage_entries()] == [e.amount_cents for e in twin.usage_entries()]
