"""Sign-in, roles and the console layout, in a real browser against the running app."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, LiveApp, sign_in

SIDEBAR = "nav[aria-label='Console']"


def test_owner_signs_in_and_sees_administration_and_billing(page: Page):
    sign_in(page, "owner@example.com")
    expect(page.locator("#header-account-name")).to_have_text("Northwind Analytics")
    expect(page.locator("#header-role")).to_have_text("Owner")
    expect(page.locator("#header-plan")).to_contain_text("Pro")
    expect(page.locator("#header-account-id")).to_contain_text(re.compile(r"acct_[0-9A-Z]{10}"))
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_role("group", name="Administration")).to_be_visible()
    expect(sidebar.get_by_role("group", name="Billing")).to_be_visible()
    page.locator(SIDEBAR).get_by_role("link", name="Company").click()
    expect(page.get_by_role("heading", name="Company information")).to_be_visible()


def test_member_sees_only_info_and_is_refused_on_a_direct_url(page: Page):
    sign_in(page, "member@example.com")
    expect(page.locator("#header-role")).to_have_text("Member")
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_role("link", name="Info")).to_be_visible()
    expect(sidebar.get_by_role("group", name="Administration")).to_have_count(0)
    expect(sidebar.get_by_role("group", name="Billing")).to_have_count(0)
    page.goto("/company")
    expect(page.locator("#no-access")).to_be_visible()
    expect(page.get_by_text("Northwind Analytics", exact=True).last).to_be_visible()
    expect(page.get_by_text("Default timezone")).to_have_count(0)


def test_wrong_password_shows_an_error(page: Page):
    page.goto("/sign-in")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_signed_out_visitor_is_sent_to_sign_in(page: Page):
    page.goto("/company")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/company"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_sign_out_ends_the_session(page: Page, live_app: LiveApp):
    sign_in(page, "admin@example.com")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ld_session")
    assert cookie["httpOnly"]
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    # The old token is dead on the server, not merely forgotten by the browser.
    page.context.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    page.goto("/company")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_password_reset_by_the_link_in_the_log(page: Page, live_app: LiveApp):
    page.goto("/forgot-password")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status")).to_contain_text("If a user with that email exists")
    link = live_app.link_in_log("admin@example.com", "reset-password")
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("Repeat the new password").fill("short")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#password-error")).to_have_text("Use at least 10 characters.")
    page.get_by_label("New password", exact=True).fill("brand-new-secret-42")
    page.get_by_label("Repeat the new password").fill("brand-new-secret-42")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    sign_in(page, "admin@example.com", "brand-new-secret-42")
    # Put the demo password back for the other tests.
    live_app.setup("set_password", email="admin@example.com", password=DEMO_PASSWORD)


def test_invited_user_sets_a_password_then_signs_in(page: Page, live_app: LiveApp):
    link = live_app.setup(
        "invite_to_first_account", email="invitee@example.com", full_name="In Vitee", base_url=live_app.url
    )
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Northwind Analytics")).to_be_visible()
    page.get_by_label("Password", exact=True).fill("welcome-aboard-2026")
    page.get_by_label("Repeat the password").fill("welcome-aboard-2026")
    page.get_by_role("button", name="Set password and join").click()
    expect(page.get_by_role("heading", name="Welcome aboard")).to_be_visible()
    sign_in(page, "invitee@example.com", "welcome-aboard-2026")
    expect(page.locator("#header-role")).to_have_text("Member")


def test_api_docs_document_the_metering_api_from_the_console_alone(page: Page, live_app: LiveApp):
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_app.url) else elsewhere.append(request.url))
    page.goto("/api/v1/docs")
    usage = page.locator(".opblock-post").filter(has=page.locator("[data-path='/api/v1/usage']"))
    expect(usage.locator(".opblock-summary-method")).to_have_text("POST")
    expect(page.locator("[data-path='/api/v1/balance']")).to_be_visible()
    assert elsewhere == [], f"the docs must work offline: {elsewhere}"


def test_the_run_output_has_no_false_alarms_and_ends_with_the_banner(live_app: LiveApp):
    deadline = time.monotonic() + 60  # the banner comes once the start's jobs are done too
    while "Ledgerdesk is running at" not in (output := (live_app.data_dir / "app.log").read_text()):
        assert time.monotonic() < deadline, "make run's banner never came"
        time.sleep(0.5)
    for noise in ("is being redefined", "reflex run", "makemigrations", "Node.js is out of date"):
        assert noise not in output
    banner = output.index("Ledgerdesk is running at")
    assert banner > output.index("Creating Production Build") and banner > output.index("App running at")
    # The jobs due at start are done first: the emails of the demo's four seeded invoices come before it.
    assert len(re.findall(r"Invoice \S+-000[1-4] from Ledgerdesk Inc\.", output[:banner])) == 4


def test_the_console_started_as_make_run_starts_it_is_ready(page: Page, live_app: LiveApp):
    # The in-app job runner writes the heartbeat; the request id comes back.
    answer = page.request.get(f"{live_app.url}/api/ready", headers={"X-Request-Id": "e2e-ready-1"})
    assert answer.status == 200, answer.text()
    assert answer.json()["checks"]["job_worker"]["status"] == "ok"
    assert answer.headers["x-request-id"] == "e2e-ready-1"
    # serve gives its processes one metrics directory under the data directory: a scrape sees them.
    metrics = page.request.get(f"{live_app.url}/metrics")
    assert metrics.status == 200, metrics.text()
    assert 'ledgerdesk_http_requests_total{method="GET",route="/api/ready",status="200"}' in metrics.text()
    assert any((live_app.data_dir / "metrics").glob("*.db"))
