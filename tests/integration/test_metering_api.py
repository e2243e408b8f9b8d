"""The metering API over HTTP (create_api() with the test database): debits, refusals that move no
money, the error shape, Idempotency-Key replays, the daily budget across a UTC midnight, the
balance, the OpenAPI document, and concurrent calls."""

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from app.api import create_api
from app.api import metering as metering_api
from app.models import Account, CreditBalance, Job, LedgerEntry
from app.services import api_keys, info, ledger
from app.services.overview import overview
from tests.factories import grant, owner_and_account

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


def _app(engine, clock: Clock):
    app = create_api()
    app.dependency_overrides[metering_api.metering_engine] = lambda: engine
    app.dependency_overrides[metering_api.metering_clock] = lambda: clock.now
    return app


@pytest.fixture
def api(engine, clock) -> TestClient:
    with TestClient(_app(engine, clock)) as client:
        yield client


class Customer:
    """An account with credits and an API key, as the operator's product sees it."""

    def __init__(self, engine, cents: int = 10_000, email: str = "owner@example.com"):
        self.engine = engine
        with Session(engine, expire_on_commit=False) as session:
            self.actor, account = owner_and_account(session, email=email)
            self.account_id = account.id
            self.key_row, self.key = api_keys.create_key(session, self.actor, "Production")
            if cents:
                grant(session, account.id, cents, key=f"grant:{account.id}")
            session.commit()

    def headers(self, **extra) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}

    def set_limits(self, **limits) -> None:
        with Session(self.engine) as session:
            ledger.ensure_credit_balance(session, self.account_id)
            session.exec(update(CreditBalance).where(CreditBalance.account_id == self.account_id).values(**limits))
            session.commit()

    def add_credits(self, cents: int, key: str) -> None:
        with Session(self.engine) as session:
            ledger.credit(
                session,
                account_id=self.account_id,
                amount_cents=cents,
                source="purchase",
                description="Top-up",
                idempotency_key=key,
            )
            session.commit()

    def balance(self) -> int:
        with Session(self.engine) as session:
            balance = ledger.balance_of(session, self.account_id)
            assert balance == ledger.ledger_sum(session, self.account_id)
            return balance

    def usage_entries(self) -> list[LedgerEntry]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(LedgerEntry)
                    .where(LedgerEntry.account_id == self.account_id, LedgerEntry.source == "usage")
                    .order_by(LedgerEntry.id)
                )
            )

    def jobs(self, kind: str) -> list[dict]:
        with Session(self.engine) as session:
            payloads = [json.loads(job.payload) for job in session.exec(select(Job).where(Job.kind == kind))]
        return [p for p in payloads if p["account_id"] == self.account_id]


def use(api: TestClient, customer: Customer, cents: int, description: str = "", **headers) -> httpx.Response:
    return api.post(
        "/api/v1/usage",
        json={"amount_cents": cents, "description": description},
        headers=customer.headers(**headers),
    )


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def test_a_metered_call_debits_the_account_and_answers_with_its_ledger_entry(engine, api):
    customer = Customer(engine)
    response = use(api, customer, 25, "1,000 search queries")

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "entry_id": body["entry_id"],
        "balance_cents": 9_975,
        "available_cents": 9_975,
        "used_today_cents": 25,
    }
    [entry] = customer.usage_entries()
    assert (entry.public_id, entry.amount_cents, entry.balance_after_cents) == (body["entry_id"], -25, 9_975)
    assert (entry.description, entry.created_at) == ("1,000 search queries", NOON)
    assert customer.balance() == 9_975

    second = use(api, customer, 75).json()
    assert (second["balance_cents"], second["used_today_cents"]) == (9_900, 100)
    assert second["entry_id"] != body["entry_id"]


def test_the_balance_endpoint_returns_the_overview_figures(engine, api):
    customer = Customer(engine, cents=5_000)
    customer.set_limits(daily_budget_cents=1_000, overage_credit_line_cents=2_000)
    use(api, customer, 300)

    response = api.get("/api/v1/balance", headers=customer.headers())

    assert response.status_code == 200
    with Session(engine) as session:
        figures = overview(session, customer.account_id, NOON)
    assert response.json() == {
        "total_credits_cents": figures.total_credits,
        "usage_this_period_cents": figures.usage_this_period,
        "remaining_credits_cents": figures.remaining_credits,
        "overage_protection_cents": figures.overage_protection,
        "used_today_cents": figures.used_today,
        "daily_budget_cents": figures.daily_budget,
        "held_cents": figures.held,
        "available_cents": figures.available_to_use,
        "next_expiry": None,
    }
    assert response.json()["remaining_credits_cents"] == 4_700
    assert response.json()["available_cents"] == 700  # the budget's remainder is the tighter limit
    assert_error(api.get("/api/v1/balance"), 401, "invalid_api_key")


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-key", "Bearer ld_" + "A" * 43, "ld_" + "A" * 43],
)
def test_a_missing_malformed_or_unknown_key_gets_401_and_moves_no_money(engine, api, authorization):
    customer = Customer(engine)
    headers = {"Authorization": authorization} if authorization else {}
    response = api.post("/api/v1/usage", json={"amount_cents": 25}, headers=headers)

    assert_error(response, 401, "invalid_api_key")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert customer.balance() == 10_000 and customer.usage_entries() == []


@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
def test_a_deleted_key_is_refused_on_the_very_next_call(engine, api, idempotency_key):
    customer = Customer(engine)
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    assert use(api, customer, 25, **extra).status_code == 200

    with Session(engine) as session:
        api_keys.delete_key(session, customer.actor, customer.key_row.public_id)
        session.commit()

    extra = {"Idempotency-Key": "retry-2"} if idempotency_key else {}
    assert_error(use(api, customer, 25, **extra), 401, "invalid_api_key")
    assert_error(api.get("/api/v1/balance", headers=customer.headers()), 401, "invalid_api_key")
    assert customer.balance() == 9_975


def test_not_enough_credits_is_402_and_moves_no_money(engine, api):
    customer = Customer(engine, cents=100)

    assert_error(use(api, customer, 150), 402, "insufficient_credits")
    assert customer.balance() == 100 and customer.usage_entries() == []
    assert use(api, customer, 100).json()["balance_cents"] == 0
    assert_error(use(api, customer, 1), 402, "insufficient_credits")
    assert customer.balance() == 0 and len(customer.usage_entries()) == 1


def test_the_plans_daily_requests_are_refused_with_429_until_midnight_utc(engine, api, clock):
    """Basic includes 10,000 API requests a UTC day, counted by the debit itself (fast path and
    full path alike) and shown on Info: the 10,001st call is refused, moves no money and is told
    when to come back; the count starts again at midnight UTC."""
    customer = Customer(engine)
    clock.now = datetime(2026, 3, 10, 23, 59, 0, tzinfo=UTC)
    customer.set_limits(usage_day=clock.now.date(), requests_today=9_998)
    assert use(api, customer, 1).status_code == 200
    assert use(api, customer, 1, **{"Idempotency-Key": "last"}).status_code == 200
    refused = use(api, customer, 1)
    assert_error(refused, 429, "daily_request_limit_exceeded")
    assert refused.headers["Retry-After"] == "60"
    assert refused.json()["error"]["message"].startswith(
        "Account limit reached: your Basic plan includes 10,000 API requests a day (UTC)"
    )
    assert use(api, customer, 1, **{"Idempotency-Key": "last"}).headers["Idempotent-Replayed"] == "true"
    assert customer.balance() == 10_000 - 2 and len(customer.usage_entries()) == 2
    with Session(engine) as session:
        limits = {limit.key: limit for limit in info.account_info(session, customer.actor, now=clock.now).limits}
    assert (limits["daily_requests"].used_text, limits["daily_requests"].reached) == ("10,000", True)

    clock.now = datetime(2026, 3, 11, 0, 0, 5, tzinfo=UTC)
    assert use(api, customer, 1).status_code == 200
    with Session(engine) as session:
        limits = {limit.key: limit for limit in info.account_info(session, customer.actor, now=clock.now).limits}
    assert limits["daily_requests"].used == 1


def test_usage_may_go_below_zero_down_to_the_overage_line(engine, api):
    customer = Customer(engine, cents=100)
    customer.set_limits(overage_credit_line_cents=50)

    assert use(api, customer, 150).json() == {
        "entry_id": customer.usage_entries()[0].public_id,
        "balance_cents": -50,
        "available_cents": 0,
        "used_today_cents": 150,
    }
    assert_error(use(api, customer, 1), 402, "insufficient_credits")
    assert customer.balance() == -50


def test_the_daily_budget_is_a_cap_refused_with_429_until_midnight_utc(engine, api, clock):
    customer = Customer(engine)
    customer.set_limits(daily_budget_cents=200)
    clock.now = datetime(2026, 3, 10, 23, 59, 0, tzinfo=UTC)
    assert use(api, customer, 120).json()["available_cents"] == 80

    too_much = use(api, customer, 10_000)  # $100 with $0.80 of the $2 budget left
    assert_error(too_much, 429, "daily_budget_exceeded")
    assert "$0.80 of $2.00 is left today" in too_much.json()["error"]["message"]
    assert customer.balance() == 10_000 - 120 and len(customer.usage_entries()) == 1
    assert api.get("/api/v1/balance", headers=customer.headers()).json()["used_today_cents"] == 120

    exactly_what_is_left = use(api, customer, 80)
    assert exactly_what_is_left.status_code == 200
    assert (exactly_what_is_left.json()["used_today_cents"], exactly_what_is_left.json()["available_cents"]) == (
        200,
        0,
    )

    clock.now = datetime(2026, 3, 10, 23, 59, 30, tzinfo=UTC)
    refused = use(api, customer, 1)
    assert_error(refused, 429, "daily_budget_exceeded")
    assert refused.headers["Retry-After"] == "30"
    assert customer.balance() == 10_000 - 200

    clock.now = datetime(2026, 3, 11, 0, 0, 5, tzinfo=UTC)
    next_day = use(api, customer, 30)
    assert next_day.status_code == 200
    assert (next_day.json()["used_today_cents"], next_day.json()["available_cents"]) == (30, 170)
    assert customer.balance() == 10_000 - 230


@pytest.mark.parametrize(
    "content",
    [
        "{}",
        '{"amount_cents": 0}',
        '{"amount_cents": -5}',
        '{"amount_cents": 1.5}',
        '{"amount_cents": "5"}',
        '{"amount_cents": true}',
        '{"amount_cents": 100000001}',
        '{"amount_cents": 1e300}',
        '{"amount_cents": 123456789012345678901234567890}',
        '{"amount_cents": -0}',
        '{"amount_cents": null}',
        '{"amount_cents": [5]}',
        '{"amount_cents": 5, "description": 5}',
        '{"amount_cents": 5, "description": null}',
        "[]",
        '{"amount_cents": 5, "extra": 1}',
        json.dumps({"amount_cents": 5, "description": "x" * 501}),
        json.dumps({"amount_cents": 5, "description": "Robert\x00'); --"}),
        json.dumps({"amount_cents": 5, "description": "bell\x07"}),
        "not json",
        "",
    ],
)
def test_a_malformed_body_gets_422_in_the_api_error_shape(engine, api, content):
    customer = Customer(engine)
    response = api.post(
        "/api/v1/usage", content=content, headers=customer.headers(**{"Content-Type": "application/json"})
    )
    assert_error(response, 422, "validation_error")
    assert customer.balance() == 10_000 and customer.usage_entries() == []


def test_a_whole_number_written_as_a_float_is_that_many_cents(engine, api):
    customer = Customer(engine)
    response = api.post("/api/v1/usage", content='{"amount_cents": 25.0}', headers=customer.headers())
    assert response.status_code == 200 and response.json()["balance_cents"] == 10_000 - 25


def test_an_oversized_body_is_refused_with_413_before_it_is_read(engine, api):
    customer = Customer(engine)
    flood = json.dumps({"amount_cents": 5, "description": "x" * 20_000})
    assert_error(api.post("/api/v1/usage", content=flood, headers=customer.headers()), 413, "payload_too_large")
    assert customer.balance() == 10_000 and customer.usage_entries() == []


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", '{"amount_cents": 5}'),
        ("application/x-www-form-urlencoded", "amount_cents=5"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="amount_cents"\r\n\r\n5\r\n--x--',
        ),
        ("application/xml", "<usage><amount_cents>5</amount_cents></usage>"),
    ],
)
def test_a_body_that_is_not_json_is_refused_with_415(engine, api, content_type, content):
    customer = Customer(engine)
    response = api.post("/api/v1/usage", content=content, headers=customer.headers(**{"Content-Type": content_type}))
    assert_error(response, 415, "unsupported_media_type")
    assert customer.balance() == 10_000 and customer.usage_entries() == []


@pytest.mark.parametrize(
    "description",
    [
        "'; DROP TABLE ledger_entry; --",
        "1' OR '1'='1",
        '<script>alert("x")</script><img src=x onerror=alert(1)>',
        "ünïcødé ✓ 𝔘",
    ],
)
def test_sql_and_html_in_the_description_are_stored_as_plain_text(engine, api, description):
    customer = Customer(engine)
    response = use(api, customer, 5, description)
    assert response.status_code == 200, response.text
    (entry,) = customer.usage_entries()
    assert entry.description == description and entry.amount_cents == -5
    assert customer.balance() == 10_000 - 5


@pytest.mark.parametrize("idempotency_key", ["", "k" * 151, "naïve".encode()])
def test_a_malformed_idempotency_key_gets_422(engine, api, idempotency_key):
    customer = Customer(engine)
    assert_error(use(api, customer, 5, **{"Idempotency-Key": idempotency_key}), 422, "validation_error")
    assert customer.balance() == 10_000


def test_the_same_idempotency_key_and_body_returns_the_first_answer_and_debits_once(engine, api):
    customer = Customer(engine)
    first = use(api, customer, 25, "batch 7", **{"Idempotency-Key": "batch-7"})
    again = use(api, customer, 25, "batch 7", **{"Idempotency-Key": "batch-7"})

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert customer.balance() == 9_975 and len(customer.usage_entries()) == 1

    assert_error(use(api, customer, 26, "batch 7", **{"Idempotency-Key": "batch-7"}), 409, "idempotency_key_reused")
    assert_error(use(api, customer, 25, "batch 8", **{"Idempotency-Key": "batch-7"}), 409, "idempotency_key_reused")
    assert customer.balance() == 9_975

    other = Customer(engine, email="other@example.com")
    assert use(api, other, 25, "batch 7", **{"Idempotency-Key": "batch-7"}).json()["balance_cents"] == 9_975


def test_a_refused_call_is_not_remembered_so_its_retry_can_pass(engine, api):
    customer = Customer(engine, cents=10)
    assert_error(use(api, customer, 25, **{"Idempotency-Key": "job-1"}), 402, "insufficient_credits")
    customer.add_credits(100, "topup-1")

    retried = use(api, customer, 25, **{"Idempotency-Key": "job-1"})
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert customer.balance() == 85


def test_spend_notifications_and_auto_recharge_start_once_from_metered_calls(engine, api):
    customer = Customer(engine, cents=1_000)
    customer.set_limits(daily_notify_threshold_cents=50, daily_budget_cents=200, recharge_threshold_cents=800)
    for _ in range(3):
        assert use(api, customer, 30).status_code == 200
    assert [(j["kind"], j["used_cents"]) for j in customer.jobs("spend_notification")] == [("threshold", 60)]
    assert customer.jobs("auto_recharge") == []

    for cents in (30, 30, 30, 20):
        assert use(api, customer, cents).status_code == 200  # to the budget exactly; balance 800
    assert [(j["kind"], j["used_cents"]) for j in customer.jobs("spend_notification")] == [
        ("threshold", 60),
        ("budget", 200),
    ]
    assert len(customer.jobs("auto_recharge")) == 1
    assert_error(use(api, customer, 30), 429, "daily_budget_exceeded")
    assert customer.balance() == 1_000 - 200


def test_the_api_docs_page_loads_swagger_ui_from_the_console_itself(api):
    page = api.get("/api/v1/docs")
    assert page.status_code == 200
    assert "://" not in page.text, "the docs page must work offline and within the console's CSP: no CDN"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        response = api.get(asset)
        assert response.status_code == 200 and response.content, asset
    assert "SwaggerUIBundle" in api.get("/api/v1/docs/swagger-ui-bundle.js").text
    assert "url: '/api/v1/openapi.json'" in page.text


def test_the_openapi_document_describes_the_metering_api(api):
    document = api.get("/api/v1/openapi.json").json()
    usage = document["paths"]["/api/v1/usage"]["post"]
    assert set(usage["responses"]) == {"200", "401", "402", "403", "409", "413", "415", "422", "429", "503"}
    assert usage["responses"]["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert "when it would take today's (UTC) usage past the budget" in usage["description"]
    body_schema = usage["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/UsageRequest"}
    assert [p["name"] for p in usage["parameters"]] == ["Idempotency-Key"]
    assert usage["security"] == [{"ApiKey": []}]
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    schemas = document["components"]["schemas"]
    assert set(schemas["UsageRequest"]["properties"]) == {"amount_cents", "description"}
    assert set(schemas["UsageResponse"]["properties"]) == {
        "entry_id",
        "balance_cents",
        "available_cents",
        "used_today_cents",
    }
    assert schemas["ErrorResponse"]["properties"]["error"] == {"$ref": "#/components/schemas/ApiError"}
    assert "401" in document["paths"]["/api/v1/balance"]["get"]["responses"]


def test_concurrent_calls_neither_overdraw_nor_lose_a_debit(engine, clock):
    customer = Customer(engine, cents=1_000)
    app = _app(engine, clock)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            responses = await asyncio.gather(
                *(
                    client.post("/api/v1/usage", json={"amount_cents": 50}, headers=customer.headers())
                    for _ in range(40)
                )
            )
            await metering_api.close_pools()
        return sorted(response.status_code for response in responses)

    assert asyncio.run(burst()) == [200] * 20 + [402] * 20
    assert customer.balance() == 0
    assert len({entry.public_id for entry in customer.usage_entries()}) == 20


def test_concurrent_retries_with_one_idempotency_key_debit_once(engine, clock):
    customer = Customer(engine)
    app = _app(engine, clock)
    headers = customer.headers(**{"Idempotency-Key": "burst"})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            responses = await asyncio.gather(
                *(client.post("/api/v1/usage", json={"amount_cents": 50}, headers=headers) for _ in range(20))
            )
            await metering_api.close_pools()
        return responses

    responses = asyncio.run(burst())
    assert {response.status_code for response in responses} == {200}
    assert len({response.text for response in responses}) == 1
    assert customer.balance() == 9_950 and len(customer.usage_entries()) == 1


def test_a_replay_in_a_later_day_keeps_its_first_answer(engine, api, clock):
    customer = Customer(engine)
    first = use(api, customer, 25, **{"Idempotency-Key": "late"})
    clock.now = NOON + timedelta(days=2)
    assert use(api, customer, 25, **{"Idempotency-Key": "late"}).json() == first.json()
    assert customer.balance() == 9_975


def test_a_call_waits_for_sqlite_while_another_connection_writes(sqlite_engine, clock):
    customer = Customer(sqlite_engine)
    writer = sqlite_engine.raw_connection()
    writer.driver_connection.execute("BEGIN IMMEDIATE")
    with TestClient(_app(sqlite_engine, clock)) as api, ThreadPoolExecutor(1) as pool:
        call = pool.submit(use, api, customer, 25)
        assert not wait([call], timeout=0.3).done  # queued behind the other writer, not refused
        writer.driver_connection.execute("COMMIT")
        assert call.result(timeout=30).json()["balance_cents"] == 9_975
    writer.close()
    assert customer.balance() == 9_975


@pytest.mark.parametrize("idempotency_key", [None, "suspended-1"])
def test_a_suspended_accounts_calls_are_refused_with_403_until_it_is_reactivated(engine, api, idempotency_key):
    customer = Customer(engine)
    other = Customer(engine, email="other@example.com")
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    with Session(engine) as session:
        account = session.get(Account, customer.account_id)
        account.suspended_at = NOON
        session.add(account)
        session.commit()

    assert_error(use(api, customer, 25, **extra), 403, "account_suspended")
    assert_error(api.get("/api/v1/balance", headers=customer.headers()), 403, "account_suspended")
    assert customer.balance() == 10_000 and customer.usage_entries() == []
    assert use(api, other, 25).status_code == 200  # only that account

    with Session(engine) as session:
        account = session.get(Account, customer.account_id)
        account.suspended_at = None
        session.add(account)
        session.commit()
    assert use(api, customer, 25, **extra).json()["balance_cents"] == 9_975


def batch(api: TestClient, customer: Customer, *events: dict) -> httpx.Response:
    return api.post("/api/v1/usage/batch", json={"events": list(events)}, headers=customer.headers())


def test_a_batch_applies_each_event_in_order_as_if_sent_alone(engine, api):
    customer = Customer(engine, cents=1_000)
    first = use(api, customer, 100, **{"Idempotency-Key": "sent-before"}).json()

    response = batch(
        api,
        customer,
        {"amount_cents": 300, "description": "first"},
        {"amount_cents": 700},  # 600 left: refused
        {"amount_cents": 100, "idempotency_key": "sent-before"},  # a replay: the first answer, no money
        {"amount_cents": 101, "idempotency_key": "sent-before"},  # another body with that key
        {"amount_cents": 250, "idempotency_key": "in-batch"},
        {"amount_cents": 250, "idempotency_key": "in-batch"},  # its own replay, in the same batch
        {"amount_cents": 350, "description": "last"},
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r.get("balance_cents", r.get("error", {}).get("code")) for r in results] == [
        600,
        "insufficient_credits",
        900,
        "idempotency_key_reused",
        350,
        350,
        0,
    ]
    assert results[2] == first and results[5] == results[4]
    assert set(results[0]) == {"entry_id", "balance_cents", "available_cents", "used_today_cents"}
    entries = customer.usage_entries()
    assert [e.amount_cents for e in entries] == [-100, -300, -250, -350]
    assert (entries[1].description, entries[3].description) == ("first", "last")
    assert [e.public_id for e in entries[1:]] == [
        results[0]["entry_id"],
        results[4]["entry_id"],
        results[6]["entry_id"],
    ]
    assert customer.balance() == 0
    assert use(api, customer, 250, **{"Idempotency-Key": "in-batch"}).json() == results[4]


def test_a_batch_is_refused_whole_when_too_large_malformed_or_without_a_valid_key(engine, api):
    customer = Customer(engine)
    assert_error(batch(api, customer, *[{"amount_cents": 1}] * 101), 413, "payload_too_large")
    flood = json.dumps({"events": [{"amount_cents": 1}]}) + " " * 256 * 1024
    response = api.post("/api/v1/usage/batch", content=flood, headers=customer.headers())
    assert_error(response, 413, "payload_too_large")
    assert_error(batch(api, customer, {"amount_cents": 5}, {"amount_cents": 0}), 422, "validation_error")
    assert_error(batch(api, customer, {"amount_cents": 5}, {"amount_cents": 5, "x": 1}), 422, "validation_error")
    assert_error(batch(api, customer), 422, "validation_error")
    bad_key = {"amount_cents": 5, "idempotency_key": "é"}
    assert_error(batch(api, customer, {"amount_cents": 5}, bad_key), 422, "validation_error")
    response = api.post("/api/v1/usage/batch", json={"events": [{"amount_cents": 5}]})
    assert_error(response, 401, "invalid_api_key")
    assert customer.balance() == 10_000 and customer.usage_entries() == []
    assert batch(api, customer, *[{"amount_cents": 1}] * 100).status_code == 200
    assert customer.balance() == 10_000 - 100


def test_the_lean_path_keeps_the_api_contract(engine, api):
    """Served before FastAPI's routing: the request id is echoed, other methods still get 405."""
    customer = Customer(engine)
    response = use(api, customer, 5, **{"X-Request-Id": "req-42"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "req-42"
    assert response.headers["Content-Type"] == "application/json"
    wrong = api.get("/api/v1/usage/batch", headers=customer.headers())
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"


def test_calls_that_keep_arriving_as_groups_end_are_all_answered(engine, clock):
    """Clients that each send their next call as soon as the last is answered: every call is
    answered (a call queued while a group commit finishes starts the next one) and debited once."""
    customer = Customer(engine)
    app = _app(engine, clock)

    async def clients() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:

            async def one_client() -> list[int]:
                return [
                    (
                        await client.post("/api/v1/usage", json={"amount_cents": 1}, headers=customer.headers())
                    ).status_code
                    for _ in range(25)
                ]

            statuses = await asyncio.wait_for(asyncio.gather(*(one_client() for _ in range(8))), timeout=120)
            await metering_api.close_pools()
        return [status for each in statuses for status in each]

    assert asyncio.run(clients()) == [200] * 200
    assert customer.balance() == 10_000 - 200 and len(customer.usage_entries()) == 200
