"""Discover Products in the browser: an owner compares the pricing plans, signs up for a free
plan and for a paid one (charged to the card for the rest of the month, after a confirmation
with the amount), switches it back to free (credited), invites a user to some of the account's
products, and upgrades again with a card that needs 3-D Secure, authenticated in the page. The
test works in an account of its own."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from app.models import utcnow
from app.services.money import format_usd
from app.services.subscription import prorate
from tests.e2e.conftest import LiveApp, sign_in


def _own_account(live_app: LiveApp) -> str:
    email = f"products-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup(
        "new_account", name="Products Test Co", plan="pro", users=[(email, "Pia Products", "owner")], visa=True
    )
    return email


def test_an_owner_compares_plans_signs_up_and_invites_to_chosen_products(page: Page, live_app: LiveApp):
    email = _own_account(live_app)
    sign_in(page, email, next_path="/products")
    expect(page.get_by_role("heading", name="Discover Products", level=1)).to_be_visible()
    analytics = page.locator("[data-product='analytics']")
    expect(analytics.locator("[data-offer='analytics:free']")).to_contain_text("Free")
    expect(analytics.locator("[data-offer='analytics:standard']")).to_contain_text("$19.00 per month")
    expect(page.locator("[data-product='metering']")).to_contain_text("Active")

    # A free plan: confirmed, active at once.
    page.locator("[data-offer='alerts:free']").get_by_role("button", name="Sign up").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Smart Alerts Free is free. It starts at once.")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("You signed up for Smart Alerts.")
    expect(page.locator("[data-product='alerts']")).to_contain_text("Active")
    expect(page.locator("[data-offer='alerts:free']")).to_contain_text("Your plan")

    # A paid plan: the rest of this month is charged to the card, as the confirmation says first.
    amount = format_usd(prorate(0, 1_900, utcnow()).amount_cents)
    page.locator("[data-offer='analytics:standard']").get_by_role("button", name="Sign up").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Charged now to Visa •••• 4242 for the rest of this month: {amount}.")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text(
        f"You signed up for Usage Analytics. {amount} was charged to your card; the paid invoice is on the Invoices page."
    )
    # Like a plan: back to Free, and the paid rest of the month comes back as usage credits.
    page.locator("[data-offer='analytics:free']").get_by_role("button", name="Switch to Free").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Credited to your balance now: {amount}.")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Usage Analytics is now on Free. {amount} was credited to your balance; it is listed in Balance History."
    )
    expect(page.locator("[data-offer='analytics:free']")).to_contain_text("Your plan")
    page.goto("/billing/invoices")
    expect(page.locator("body")).to_contain_text(amount)

    # Pro includes 3 products: the limit is shown on Info.
    page.goto("/")
    expect(page.locator("body")).to_contain_text("Products")

    # The invitation offers the account's products.
    page.goto("/team")
    page.get_by_role("button", name="Invite").click()
    invite = page.get_by_role("dialog")
    invite.get_by_label("Email").fill(f"guest-{uuid.uuid4().hex[:6]}@example.com")
    invite.get_by_label("Full name").fill("Gus Guest")
    products = invite.get_by_role("group", name="Products")
    expect(products.get_by_role("checkbox")).to_have_count(3)
    invite.get_by_label("Usage Analytics").uncheck()
    invite.get_by_role("button", name="Send invitation").click()
    row = page.locator("#team-table tbody tr").filter(has_text="Gus Guest")
    expect(row).to_contain_text("Ledgerdesk Metering, Smart Alerts")

    # A card that needs 3-D Secure: authenticated here, in the page, and the product is active.
    live_app.setup("default_card", email=email, number="4000002500003155")
    page.goto("/products")
    page.locator("[data-offer='analytics:standard']").get_by_role("button", name="Switch to Standard").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure step
    expect(page.get_by_role("status")).to_have_text(
        f"Usage Analytics is active on Standard. {amount} was charged to your card; the paid invoice is on the "
        "Invoices page."
    )
    expect(page.locator("[data-offer='analytics:standard']")).to_contain_text("Your plan")
