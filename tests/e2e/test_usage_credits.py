"""Add Usage Credits in the browser: card capture through the embedded Card Element
(localstripe's Stripe.js), a top-up, a declined card, amount validation, and one charge per
click however often the button is pressed."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in


def _dollars(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def _remaining(page: Page) -> Decimal:
    page.goto("/billing")
    figure = page.locator("#remaining-credits")
    expect(figure).to_contain_text("$")
    return _dollars(figure.inner_text())


def _expect_remaining(page: Page, amount: Decimal) -> None:
    """Wait for the Overview to show `amount`: until its load finishes, the figure a client-side
    navigation shows is the one from the previous visit."""
    page.goto("/billing")
    expect(page.locator("#remaining-credits")).to_contain_text(f"${amount:,.2f}")


def _enter_card(page: Page, number: str, name: str = "Olivia Owner") -> None:
    page.get_by_role("button", name="Add new payment method +").click()
    card = page.locator("#card-element")
    expect(card.get_by_label("Card number")).to_be_visible()
    page.get_by_label("Name on card").fill(name)
    card.get_by_label("Card number").fill(number)
    card.get_by_label("Expiry month").fill("12")
    card.get_by_label("Expiry year").fill("34")
    card.get_by_label("CVC").fill("123")
    card.get_by_label("Postal code").fill("10115")
    page.get_by_role("button", name="Save card").click()


def test_add_25_dollars_with_a_new_card(page: Page):
    sign_in(page, "owner@example.com")
    before = _remaining(page)
    page.goto("/billing/add-usage-credits")
    expect(page.get_by_role("heading", name="How much would you like to add to your balance?")).to_be_visible()
    # Not 4242: the demo account's default card already ends in 4242.
    _enter_card(page, "5555555555554444")
    expect(page.locator("#card-element")).to_have_count(0)
    expect(page.locator("#payment_method")).to_contain_text("4444")
    page.get_by_label("Payment amount").fill("25")
    page.get_by_role("button", name="Add to my balance").click()
    expect(page.get_by_role("status")).to_have_text("Added $25.00 to your balance.")

    _expect_remaining(page, before + Decimal("25.00"))
    page.goto("/billing/balance-history")
    first_row = page.locator("#balance-history-table tbody tr").first
    expect(first_row).to_contain_text("$25.00")
    expect(first_row).to_contain_text("via Add Usage Credits")


def test_declined_card_shows_the_decline_and_adds_nothing(page: Page):
    sign_in(page, "owner@example.com")
    before = _remaining(page)
    page.goto("/billing/add-usage-credits")
    _enter_card(page, "4000000000000002")
    expect(page.locator("#card-error")).to_contain_text(re.compile("declined", re.IGNORECASE))
    _expect_remaining(page, before)


def test_amounts_outside_5_to_5000_dollars_are_field_errors(page: Page):
    sign_in(page, "admin@example.com")
    page.goto("/billing/add-usage-credits")
    # localstripe cannot take crypto: it is not offered, and the page says why.
    expect(page.locator("#crypto-unavailable")).to_contain_text("localstripe")
    page.locator("#payment_method").click()
    expect(page.get_by_role("option", name="Visa •••• 4242 (default)")).to_be_visible()
    expect(page.get_by_role("option", name="Cryptocurrency")).to_have_count(0)
    page.keyboard.press("Escape")
    for amount in ("4.99", "5000.01"):
        page.get_by_label("Payment amount").fill(amount)
        page.get_by_role("button", name="Add to my balance").click()
        expect(page.locator("#amount-error")).to_have_text("Enter an amount between $5 and $5000.")
    page.get_by_label("Payment amount").fill("12.345")
    page.get_by_role("button", name="Add to my balance").click()
    expect(page.locator("#amount-error")).to_contain_text("Enter an amount in dollars")


def test_member_cannot_open_add_usage_credits(page: Page):
    sign_in(page, "member@example.com")
    page.goto("/billing/add-usage-credits")
    expect(page.locator("#no-access")).to_be_visible()
    expect(page.get_by_role("button", name="Add to my balance")).to_have_count(0)


@pytest.mark.parametrize("how", ["double-click", "Enter twice"])
def test_a_double_click_on_add_to_my_balance_charges_once_and_credits_once(page: Page, live_app: LiveApp, how: str):
    email = f"double-{uuid.uuid4().hex[:10]}@example.com"
    account_id = live_app.setup(
        "new_account", name="Double Click Co", users=[(email, "Dora Double", "owner")], visa=True
    )
    sign_in(page, email)
    page.goto("/billing/add-usage-credits")
    expect(page.locator("#payment_method")).to_contain_text("4242")
    amount = page.get_by_label("Payment amount")
    amount.fill("21")
    button = page.get_by_role("button", name="Add to my balance")
    if how == "double-click":
        button.dblclick()
    else:
        # Straight from the keyboard, as fast as a person's double tap: a second Enter that
        # comes after the result is shown is a new attempt, and charges again by design.
        amount.focus()
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added $21.00 to your balance.")
    expect(button).to_be_enabled()
    # Whatever the second submit finds, it has finished before the figures are read.
    page.wait_for_timeout(1500)
    assert live_app.setup("charges_and_credits", account_id=account_id) == {"charged": [2100], "credited": [2100]}

    # The next click is a new payment.
    button.click()
    expect(page.get_by_role("status")).to_have_text("Added $21.00 to your balance.")
    page.wait_for_timeout(1000)
    assert live_app.setup("charges_and_credits", account_id=account_id) == {
        "charged": [2100, 2100],
        "credited": [2100, 2100],
    }


def test_balance_history_keeps_its_filters_and_page_in_the_url(page: Page):
    """A reload or Back shows the same rows: the filters and the page are in the URL."""
    sign_in(page, "owner@example.com", next_path="/billing/balance-history")
    rows = page.locator("#balance-history-table tbody tr")
    expect(rows).to_have_count(25)
    newest = rows.first.locator("td").first.inner_text()
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2&after=txn_"))
    expect(rows.first).not_to_contain_text(newest)
    second_page_first = rows.first.locator("td").first.inner_text()
    page.reload()
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(rows.first).to_contain_text(second_page_first)
    page.go_back()
    expect(rows.first).to_contain_text(newest)

    page.locator("#kind").click()
    page.get_by_role("option", name="Usage").click()
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"kind=usage"))
    page.reload()
    expect(page.locator("#kind")).to_have_text("Usage")
    expect(rows.first).to_contain_text("API usage")
