"""Payment Methods in the browser: cards added through the embedded Card Element (localstripe's
Stripe.js), the default card switched, cards deleted after confirmation, and the refusals.
Each test signs in to an account of its own, so the shared demo account is left alone."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import LiveApp, sign_in

PAGE = "/billing/payment-methods"


def _own_account(live_app: LiveApp, *, plan: str = "basic", invoice_priced: bool = False) -> str:
    """A new account with an owner; the owner's email."""
    email = f"cards-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup(
        "new_account",
        name="Card Test Co",
        plan=plan,
        users=[(email, "Casey Cards", "owner")],
        invoice_priced=invoice_priced,
    )
    return email


def _open(page: Page, email: str) -> None:
    sign_in(page, email)
    page.goto(PAGE)
    expect(page.get_by_role("heading", name="Payment Methods", level=1)).to_be_visible()


def _add_card(page: Page, number: str, name: str = "Casey Cards", exp_year: str = "34") -> None:
    page.get_by_role("button", name="Add New Credit Card").click()
    card = page.locator("#card-element")
    expect(card.get_by_label("Card number")).to_be_visible()
    page.get_by_label("Name on card").fill(name)
    card.get_by_label("Card number").fill(number)
    card.get_by_label("Expiry month").fill("12")
    # Typed key by key, as a person does: a four-digit year must not run on into the CVC.
    card.get_by_label("Expiry year").press_sequentially(exp_year)
    card.get_by_label("CVC").fill("123")
    card.get_by_label("Postal code").fill("10115")
    page.get_by_role("button", name="Save card").click()


def _row(page: Page, last4: str) -> Locator:
    return page.locator("#payment-methods-table tbody tr").filter(has_text=f"•••• {last4}")


def test_add_cards_switch_the_default_and_delete_after_confirmation(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app))
    expect(page.locator("#payment-methods-empty")).to_contain_text("No cards on file yet.")

    _add_card(page, "4242424242424242")
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 saved.")
    expect(page.locator("#card-element")).to_have_count(0)
    first = _row(page, "4242")
    expect(first).to_contain_text("Casey Cards")
    expect(first).to_contain_text("12/2034")
    expect(first).to_contain_text("Default Card")

    _add_card(page, "5555555555554444", name="Sam Second")
    second = _row(page, "4444")
    expect(second).to_contain_text("Sam Second")
    expect(first).to_contain_text("Default Card")
    second.get_by_role("button", name="Set as Default").click()
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4444 is now your default card.")
    expect(second).to_contain_text("Default Card")
    expect(first.get_by_role("button", name="Set as Default")).to_be_visible()

    # Cancelling the confirmation keeps the card.
    page.get_by_role("button", name="Delete card Visa ending in 4242").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Delete Visa •••• 4242?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(first).to_be_visible()

    page.get_by_role("button", name="Delete card Visa ending in 4242").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete card").click()
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 deleted.")
    expect(first).to_have_count(0)
    expect(second).to_contain_text("Default Card")

    # A fresh page shows what was stored, not just what the browser remembers.
    page.reload()
    expect(page.locator("#payment-methods-table tbody tr")).to_have_count(1)
    expect(_row(page, "4444")).to_contain_text("Default Card")


def test_deleting_the_default_card_asks_which_card_becomes_the_default(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app))
    _add_card(page, "4242424242424242")
    expect(_row(page, "4242")).to_contain_text("Default Card")
    _add_card(page, "5555555555554444")
    expect(_row(page, "4444")).to_be_visible()
    _add_card(page, "4000056655665556")
    expect(_row(page, "5556")).to_be_visible()

    page.get_by_role("button", name="Delete card Visa ending in 4242").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Which card becomes the default?")
    expect(dialog.get_by_role("radio", name="Visa •••• 4444")).to_be_checked()
    dialog.get_by_role("radio", name="Visa •••• 5556").click()
    expect(dialog.get_by_role("radio", name="Visa •••• 5556")).to_be_checked()
    dialog.get_by_role("button", name="Delete card").click()
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 deleted.")
    expect(_row(page, "5556")).to_contain_text("Default Card")
    expect(_row(page, "4444").get_by_role("button", name="Set as Default")).to_be_visible()


def test_the_card_form_takes_a_four_digit_year_and_marks_an_expired_twin(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app))
    # Saving before the card is typed says what is missing, at the form.
    page.get_by_role("button", name="Add New Credit Card").click()
    page.get_by_label("Name on card").fill("Casey Cards")
    page.get_by_role("button", name="Save card").click()
    expect(page.locator(".ld-card-form #card-error")).to_have_text("Enter the card number.")
    page.locator(".ld-card-form").get_by_role("button", name="Cancel").click()

    _add_card(page, "4242424242424242", exp_year="2034")
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 saved.")
    current = page.locator("#payment-methods-table tbody tr").filter(has_text="12/2034")
    expect(current).to_be_visible()
    # Two cards ending alike are told apart by their expiry, in the list and the messages.
    _add_card(page, "4242424242424242", exp_year="2020")
    expect(page.get_by_role("status")).to_have_text("Visa •••• 4242 (exp 12/20) saved.")
    expired = page.locator("#payment-methods-table tbody tr").filter(has_text="12/2020")
    expect(expired).to_contain_text("Visa •••• 4242 (exp 12/20)")
    expect(expired).to_contain_text("Expired")
    expect(current).to_contain_text("Visa •••• 4242 (exp 12/34)")
    expect(current).not_to_contain_text("Expired")


def test_a_declined_card_shows_the_error_next_to_the_form(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app))
    _add_card(page, "4000000000000002")
    expect(page.locator(".ld-card-form #card-error")).to_contain_text(re.compile("declined", re.IGNORECASE))
    expect(page.locator("#payment-methods-empty")).to_be_visible()


def test_the_only_card_of_a_paid_plan_cannot_be_deleted(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, plan="pro"))
    _add_card(page, "4242424242424242")
    expect(_row(page, "4242")).to_contain_text("Default Card")

    page.get_by_role("button", name="Delete card Visa ending in 4242").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog.locator("#delete-blocker")).to_have_text(
        "Your Pro plan is billed to this card. Add another card before deleting this one."
    )
    expect(dialog.get_by_role("button", name="Delete card")).to_have_count(0)
    dialog.get_by_role("button", name="Close").click()
    expect(_row(page, "4242")).to_be_visible()


def test_invoice_priced_accounts_pay_by_invoice(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, plan="custom", invoice_priced=True))
    expect(page.locator("#invoice-priced")).to_have_text("Your account pays by invoice, so no card can be added.")
    expect(page.get_by_role("button", name="Add New Credit Card")).to_have_count(0)


def test_the_demo_account_starts_with_a_card(page: Page):
    sign_in(page, "admin@example.com")
    page.get_by_role("group", name="Billing").get_by_role("link", name="Payment Methods").click()
    expect(page).to_have_url(re.compile(PAGE + "$"))
    expect(_row(page, "4242").filter(has_text="Northwind Analytics").first).to_be_visible()


def test_member_cannot_open_payment_methods(page: Page):
    sign_in(page, "member@example.com")
    page.goto(PAGE)
    expect(page.locator("#no-access")).to_be_visible()
    expect(page.get_by_role("button", name="Add New Credit Card")).to_have_count(0)
