"""Auto Recharge in the browser: turned on below the threshold, the in-app job worker charges the
default card and the credits show in Balance History; the monthly ceiling pauses it; without a
card the page says where to add one. Each test signs in to an account of its own, so the shared demo account is left alone."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, expect_after_refresh, sign_in

PAGE = "/billing/auto-recharge"


def _own_account(live_app: LiveApp, *, with_card: bool) -> str:
    """A new account (balance $0) with an owner and, if asked, a default Visa card; the owner's email."""
    email = f"recharge-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup("new_account", name="Recharge Test Co", users=[(email, "Rory Recharge", "owner")], visa=with_card)
    return email


def _open(page: Page, email: str) -> None:
    sign_in(page, email)
    page.goto(PAGE)
    expect(page.get_by_role("heading", name="Auto Recharge", level=1)).to_be_visible()


def test_turned_on_below_the_threshold_the_balance_is_topped_up(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, with_card=True))
    expect(
        page.get_by_text("When your balance reaches a certain threshold, we will automatically charge")
    ).to_be_visible()
    expect(page.locator("#current-balance")).to_have_text("$0.00")
    expect(page.locator("#recharge-card")).to_contain_text("4242")

    page.get_by_label("Setting to Auto Recharge").click()
    page.get_by_label("When balance falls to").fill("10")
    page.get_by_label("Amount to add").fill("50")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text(
        "Auto recharge is on. Your balance is at or below $10.00, so we are adding $50.00 now."
    )

    # The in-app worker runs the recharge job within a few seconds.
    first_row = page.locator("#balance-history-table tbody tr").first
    page.goto("/billing/balance-history")
    expect_after_refresh(first_row, "via Auto Recharge call.", page.reload)
    expect(first_row).to_contain_text("$50.00")

    page.goto("/billing")
    expect(page.locator("#remaining-credits")).to_have_text("$50.00")
    expect(page.locator("#auto-recharge-status")).to_have_text("Enabled")
    page.goto(PAGE)
    expect(page.get_by_label("Setting to Auto Recharge")).to_be_checked()
    expect(page.get_by_label("When balance falls to")).to_have_value("10.00")
    expect(page.locator("#current-balance")).to_have_text("$50.00")


def test_bad_amounts_are_shown_next_to_their_fields(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, with_card=True))
    page.get_by_label("Setting to Auto Recharge").click()
    page.get_by_label("When balance falls to").fill("abc")
    page.get_by_label("Amount to add").fill("4.99")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#threshold-error")).to_contain_text("Enter an amount in dollars")
    expect(page.locator("#amount-error")).to_have_text("Enter an amount between $5 and $5000.")

    page.get_by_label("When balance falls to").fill("50")
    page.get_by_label("Amount to add").fill("20")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#amount-error")).to_contain_text("Enter an amount above $50.00, so that one recharge lifts")
    expect(page.locator("#threshold-error")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Setting to Auto Recharge")).not_to_be_checked()


def test_without_a_card_the_page_points_to_payment_methods(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, with_card=False))
    notice = page.locator("#no-card")
    expect(notice).to_contain_text("Add a card on the Payment Methods page first.")
    expect(notice.get_by_role("link", name="Go to Payment Methods")).to_have_attribute(
        "href", "/billing/payment-methods"
    )
    expect(page.get_by_label("Setting to Auto Recharge")).to_be_disabled()


def test_the_monthly_ceiling_pauses_auto_recharge_and_says_why(page: Page, live_app: LiveApp):
    email = _own_account(live_app, with_card=True)
    key = live_app.setup("new_api_key", email=email, name="Ceiling e2e")
    _open(page, email)
    page.get_by_label("Setting to Auto Recharge").click()
    page.get_by_label("When balance falls to").fill("10")
    page.get_by_label("Amount to add").fill("50")
    ceiling = page.get_by_label("At most per calendar month (optional)")
    ceiling.fill("49")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#ceiling-error")).to_have_text(
        "Enter a ceiling from the amount to add ($50.00) to $100,000.00, or leave it empty for no ceiling."
    )

    # One $50 recharge fits under a $50 ceiling; the next one would not.
    ceiling.fill("50")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("we are adding $50.00 now")
    expect_after_refresh(page.locator("#current-balance"), "$50.00", page.reload)
    used = httpx.post(
        f"{live_app.url}/api/v1/usage", json={"amount_cents": 4_500}, headers={"Authorization": f"Bearer {key}"}
    )
    assert used.status_code == 200
    paused = "Paused: this month's automatic top-ups reached your $50.00 ceiling; resumes on "
    expect_after_refresh(page.locator("#auto-recharge-paused"), paused, page.reload)
    expect(page.locator("#current-balance")).to_have_text("$5.00")
    expect(ceiling).to_have_value("50.00")
    page.goto("/billing")
    expect(page.locator("#auto-recharge-reason")).to_contain_text(paused)
