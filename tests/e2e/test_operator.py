"""The operator's back office in the browser: an operator signs in, finds an account, grants it
$10 expiring in ten days with a reason (a bad priority first refused at its field), and the
customer's Overview ("Expiring soon") and Audit Log show it; a suspended account's API key gets
403 and its console says it is read-only (its chat box still reaches the staff); a customer
reaches nothing under /operator; a customer's chat message is answered from the back office and
both sides see it live with their unread counts."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, LiveApp, sign_in

OPERATOR = "operator@example.com"


def _customer(live_app: LiveApp, label: str) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    name, owner = f"{label} {suffix}", f"{label.lower().replace(' ', '-')}-{suffix}@example.com"
    live_app.setup("new_account", name=name, users=[(owner, "Cora Customer", "owner")])
    return name, owner


def operator_sign_in(page: Page) -> None:
    page.goto("/operator/sign-in")
    page.get_by_label("Email").fill(OPERATOR)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Accounts", level=1)).to_be_visible()
    expect(page.locator("#operator-name")).to_have_text("Oscar Operator")


def open_account(page: Page, name: str) -> None:
    page.locator("#search").fill(name)
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("#operator-accounts tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=name).click()
    expect(page.locator("#operator-account-name")).to_have_text(name)


def test_an_operator_grants_ten_dollars_and_the_customer_sees_it(page: Page, live_app: LiveApp):
    name, owner = _customer(live_app, "Grant Co")
    operator_sign_in(page)
    open_account(page, name)

    form = page.locator("#grant-form")
    form.get_by_label("Amount (USD)").fill("10")
    form.get_by_label("Reason").fill("Sorry for the outage")
    # A promotional grant: usable through a day ten days from now, with a priority. A bad
    # priority is refused next to its field and grants nothing.
    last_day = (datetime.now(UTC) + timedelta(days=10)).date()
    form.get_by_label("Usable through (optional)").fill(last_day.isoformat())
    form.get_by_label("Priority (optional, 0–100)").fill("200")
    form.get_by_role("button", name="Adjust credits").click()
    expect(form.get_by_text("The priority is a whole number from 0 to 100.")).to_be_visible()
    expect(page.locator("#operator-ledger tbody tr")).to_have_count(0)
    form.get_by_label("Priority (optional, 0–100)").fill("5")
    form.get_by_role("button", name="Adjust credits").click()
    expect(page.get_by_text("Credits adjusted.")).to_be_visible()
    expect(page.locator("#operator-ledger tbody tr").first).to_contain_text("$10.00")
    expect(page.locator("#operator-audit tbody tr").first).to_contain_text(
        "Granted $10.00 USD of usage credits, expiring"
    )
    expect(page.locator("#operator-audit tbody tr").first).to_contain_text("Reason: Sorry for the outage")

    # "View as": the customer's own console, read-only under a banner, until Exit.
    view = page.locator("#view-as-form")
    view.get_by_label("Reason").fill("Checking what they see")
    view.get_by_role("button", name="View as").click()
    banner = page.locator("#view-as-banner")
    expect(banner).to_contain_text(f"Viewing {name} as operator — read only")
    expect(page.locator("#total-credits")).to_have_text("$10.00")
    page.goto("/api-keys")
    expect(banner).to_be_visible()
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_label("Name (optional)").fill("Sneaky")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("the console is read-only").first).to_be_visible()
    page.goto("/team")
    expect(page.locator("#team-table")).to_contain_text(owner)
    page.locator("#user-menu").click()
    expect(page.get_by_role("menuitem", name="Exit view")).to_be_visible()
    expect(page.get_by_role("menuitem", name="Your profile")).to_have_count(0)
    page.keyboard.press("Escape")
    banner.get_by_role("button", name="Exit").click()
    expect(page.locator("#operator-account-name")).to_have_text(name)
    page.goto("/billing")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, owner, next_path="/billing")
    expect(page.locator("#total-credits")).to_have_text("$10.00")
    expect(page.locator("#remaining-credits")).to_have_text("$10.00")
    expect(page.locator("#expiring-soon")).to_contain_text("Expiring soon: $10.00 of promotional credits on")
    page.goto("/audit-log")
    rows = page.locator("#audit-log-table tbody tr")
    expect(rows.first).to_contain_text("Stopped viewing the console as the customer sees it.")
    expect(rows.filter(has_text="Started viewing the console as the customer sees it (read-only).")).to_have_count(1)
    expect(rows.filter(has_text="Sneaky")).to_have_count(0)
    row = rows.filter(has_text="Granted $10.00 USD of usage credits, expiring")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Oscar Operator (operator) (operator@example.com)")
    expect(row).to_contain_text("Operator actions")


def test_a_suspended_accounts_key_gets_403_and_its_console_is_read_only(page: Page, live_app: LiveApp):
    name, owner = _customer(live_app, "Suspend Co")
    key = live_app.setup("new_api_key", email=owner, name="Prod")
    operator_sign_in(page)
    open_account(page, name)
    form = page.locator("#suspend-form")
    form.get_by_label("Reason").fill("Chargebacks")
    form.get_by_role("button", name="Suspend account").click()
    expect(page.locator("#operator-account-status")).to_have_text("suspended")

    answer = httpx.post(
        f"{live_app.url}/api/v1/usage", json={"amount_cents": 1}, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "account_suspended", answer.text

    page.context.clear_cookies()
    sign_in(page, owner, next_path="/api-keys")
    expect(page.locator("#suspended-banner")).to_contain_text("read-only")
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_label("Name (optional)").fill("Sneaky")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("This account is suspended").first).to_be_visible()
    page.keyboard.press("Escape")
    # The chat box is how a suspended account reaches the staff: it still writes.
    send_chat(page, "Please reactivate us")


def send_chat(page: Page, text: str) -> None:
    page.get_by_role("button", name=re.compile(r"^Chat with support")).click()
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#chat-log")).to_contain_text(text)


def test_a_chat_message_is_answered_from_the_back_office_and_both_sides_see_it_live(
    page: Page, browser: Browser, live_app: LiveApp
):
    name, owner = _customer(live_app, "Chat Co")
    sign_in(page, owner)
    expect(page.get_by_role("button", name="Chat with support", exact=True)).to_be_visible()
    question = "Is <b>this</b> billed twice?"
    send_chat(page, question)  # shown as typed: markup is text
    page.keyboard.press("Escape")
    expect(page.locator("#chat-log")).to_have_count(0)

    office = browser.new_context(base_url=live_app.url).new_page()
    operator_sign_in(office)
    expect(office.locator("#operator-unread-chats")).to_be_visible()
    office.get_by_role("link", name=re.compile(r"^Conversations")).click()
    row = office.locator("#operator-conversations tbody tr").filter(has_text=name)
    expect(row).to_contain_text(question)
    expect(row.locator("td").last).to_have_text("1")
    row.get_by_role("link", name=name).click()
    expect(office.locator("#operator-chat-log")).to_contain_text(question)
    office.get_by_label("Answer").fill("No: the second line is a refund.")
    office.get_by_role("button", name="Send answer").click()
    expect(office.locator("#operator-chat-log")).to_contain_text("No: the second line is a refund.")

    # The customer's page, not reloaded: the badge counts the answer, opening the box reads it.
    expect(page.locator("#chat-unread")).to_have_text("1")
    page.get_by_role("button", name="Chat with support, 1 unread").click()
    expect(page.locator("#chat-log")).to_contain_text("No: the second line is a refund.")
    expect(page.locator("#chat-log")).to_contain_text("Support")
    expect(page.locator("#chat-unread")).to_have_count(0)

    # And the staff see the customer's next message without a reload.
    page.get_by_label("Your message").fill("Thanks!")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(office.locator("#operator-chat-log")).to_contain_text("Thanks!")
    office.context.close()


def test_a_customer_reaches_nothing_under_operator(page: Page, live_app: LiveApp):
    _name, owner = _customer(live_app, "Nosy Co")
    sign_in(page, owner)
    for path in ("/operator", "/operator/api-keys", "/operator/account?id=acct_X"):
        page.goto(path)
        expect(page.get_by_role("heading", name="Operator sign-in")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/operator/sign-in\?next=/operator"))
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "ld_session")
    answer = httpx.get(f"{live_app.url}/api/operator/v1/accounts", cookies={"ld_session": session_cookie["value"]})
    assert answer.status_code == 401
    # The customer's password is no operator's.
    page.goto("/operator/sign-in")
    page.get_by_label("Email").fill(owner)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()


def test_the_run_banner_names_a_working_operator_key_and_the_docs_work_offline(page: Page, live_app: LiveApp):
    deadline = time.monotonic() + 60  # the banner comes once the server is up, maybe after this test starts
    while "Demo operator API key:" not in (output := (live_app.data_dir / "app.log").read_text()):
        assert time.monotonic() < deadline, "make run's banner never came"
        time.sleep(0.5)
    assert "Operator back office:" in output and f"{live_app.url}/operator as {OPERATOR}" in output
    key = re.search(r"Demo operator API key: (ldop_\S+)", output)
    assert key, "make run prints the demo operator API key"
    listed = httpx.get(
        f"{live_app.url}/api/operator/v1/accounts",
        params={"search": "Northwind"},
        headers={"Authorization": f"Bearer {key[1]}"},
    )
    assert listed.status_code == 200 and [a["name"] for a in listed.json()["data"]] == ["Northwind Analytics"]

    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_app.url) else elsewhere.append(request.url))
    page.goto("/api/operator/v1/docs")
    expect(page.locator("[data-path='/api/operator/v1/accounts']").first).to_be_visible()
    assert elsewhere == [], f"the docs must work offline: {elsewhere}"
