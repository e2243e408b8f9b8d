"""Spend Management in the browser: a $1 daily budget set on the page stops the metering API with
429, a test event reaches a local webhook receiver, and bad input shows field errors. The budget
and webhook tests use an account of their own, so the shared demo account keeps its settings."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, expect_after_refresh, sign_in

PAGE = "/billing/spend-management"


def _own_account(live_app: LiveApp, credits_cents: int = 5_000) -> str:
    """A new account with credits and an owner; the owner's email."""
    email = f"spend-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup(
        "new_account", name="Spend Test Co", users=[(email, "Sam Spender", "owner")], credits_cents=credits_cents
    )
    return email


def _api_key(live_app: LiveApp, email: str) -> str:
    """A new API key of the user's account, made by the user."""
    return live_app.setup("new_api_key", email=email, name="Spend e2e")


def _use(live_app: LiveApp, key: str, cents: int) -> httpx.Response:
    return httpx.post(
        f"{live_app.url}/api/v1/usage",
        json={"amount_cents": cents},
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )


def _open(page: Page, email: str) -> None:
    sign_in(page, email)
    page.goto(PAGE)
    expect(page.get_by_role("heading", name="Spend Management", level=1)).to_be_visible()


def test_a_one_dollar_budget_set_on_the_page_stops_the_api(page: Page, live_app: LiveApp):
    email = _own_account(live_app)
    key = _api_key(live_app, email)
    assert _use(live_app, key, 40).status_code == 200
    _open(page, email)
    expect(page.locator("#credits-today")).to_have_text("$0.40")
    switch = page.get_by_role("switch", name="Spend Management")
    expect(switch).not_to_be_checked()
    expect(page.get_by_label("Set daily credit usage budget")).to_be_disabled()
    expect(page.get_by_text("An API call that would take today's usage past it is refused")).to_be_visible()
    switch.click()
    page.get_by_label("Set daily credit usage budget").fill("1")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("status")).to_have_text("Your spend management settings are saved.")
    expect(page.get_by_label("Set daily credit usage budget")).to_have_value("1.00")

    assert _use(live_app, key, 50).status_code == 200
    refused = _use(live_app, key, 30)  # would go past $1
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "daily_budget_exceeded"
    assert int(refused.headers["Retry-After"]) > 0
    assert _use(live_app, key, 10).status_code == 200  # exactly what is left
    assert _use(live_app, key, 1).status_code == 429

    page.reload()
    expect(page.locator("#credits-today")).to_have_text("$1.00")
    page.get_by_label("Set daily credit usage budget").fill("5")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("status")).to_have_text("Your spend management settings are saved.")
    assert _use(live_app, key, 1).status_code == 200


class _Receiver:
    def __init__(self):
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ledgerdesk"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_test_event_reaches_the_webhook_url(page: Page, live_app: LiveApp, receiver: _Receiver):
    email = _own_account(live_app)
    _open(page, email)
    expect(page.locator("#webhook-deliveries-empty")).to_be_visible()
    expect(page.get_by_role("button", name="Send test event")).to_be_disabled()
    expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
    page.get_by_role("switch", name="Spend Management").click()
    page.get_by_label("Set a webhook URL").fill(receiver.url)
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("status")).to_have_text("Your spend management settings are saved.")
    page.get_by_role("button", name="Send test event").click()
    row = page.locator("#webhook-deliveries tbody tr").first
    expect(row).to_contain_text("test")
    expect_after_refresh(row, "delivered", page.get_by_role("button", name="Refresh").click, timeout=15)
    expect(row).to_contain_text("204")
    assert len(receiver.bodies) == 1 and b'"type": "test"' in receiver.bodies[0]


def test_bad_input_shows_field_errors_and_saves_nothing(page: Page, live_app: LiveApp):
    _open(page, "admin@example.com")
    budget = page.get_by_label("Set daily credit usage budget")
    threshold = page.get_by_label("Set a daily credit usage email notification threshold")
    expect(page.get_by_role("switch", name="Spend Management")).to_be_checked()
    expect(budget).not_to_have_value("")
    saved_budget, saved_threshold = budget.input_value(), threshold.input_value()

    threshold.fill(str(int(float(saved_budget)) + 100))
    page.get_by_label("Set a webhook URL").fill(f"{live_app.url}/api/health")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#notify_threshold-error")).to_have_text(
        "The notification threshold cannot be above the daily budget."
    )
    expect(page.locator("#webhook_url-error")).to_have_text("The webhook URL cannot point at this console.")
    budget.fill("-3")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#daily_budget-error")).to_have_text("The budget must be a positive amount.")

    page.reload()
    expect(page.get_by_label("Set daily credit usage budget")).to_have_value(saved_budget)
    expect(page.get_by_label("Set a daily credit usage email notification threshold")).to_have_value(saved_threshold)
    expect(page.locator("#notify_threshold-error")).to_have_count(0)


def test_member_cannot_open_spend_management(page: Page):
    sign_in(page, "member@example.com")
    page.goto(PAGE)
    expect(page.locator("#no-access")).to_be_visible()
    expect(page.get_by_role("button", name="Save Changes")).to_have_count(0)
