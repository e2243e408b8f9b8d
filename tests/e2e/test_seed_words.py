"""The billing pages say and place what seeds 000, 002 and 003 name: Payment Methods' "Name on
card" and "Expiring date" columns, the Spend Management switch at the top of its page, the
Invoice Address fields in the seed's order and, on Plans, a way to change the card on file."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_billing_pages_use_the_seeds_words_and_order(page: Page, owner_session):
    page.context.add_cookies(owner_session["storage_state"]["cookies"])
    page.goto("/billing/payment-methods")
    expect(page.locator("#payment-methods-table th")).to_have_text(
        ["Payment method", "Name on card", "Expiring date", "Status", "Actions"]
    )

    page.goto("/billing/spend-management")
    switch = page.get_by_role("switch", name="Spend Management")
    today = page.get_by_text("Credits Consumed Today")
    expect(today).to_be_visible()
    expect(switch).to_be_visible()  # bounding_box() does not wait: None while not yet rendered
    assert switch.bounding_box()["y"] < today.bounding_box()["y"], "the switch is at the top of the page"

    page.goto("/billing/invoice-address")
    expect(page.locator("form .ld-label")).to_have_text(
        [
            "Company Name",
            "Address 1",
            "Address 2",
            "City",
            "Postal code",
            "Region/Province",
            "Country",
            "Purchase order (PO) number",
        ]
    )

    page.goto("/plans")
    page.get_by_role("link", name="Change payment method").click()
    expect(page.get_by_role("heading", level=1, name="Payment Methods")).to_be_visible()
