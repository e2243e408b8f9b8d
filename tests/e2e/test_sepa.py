"""SEPA Direct Debit in the browser (localstripe's Stripe.js answers confirmSepaDebitSetup): an
owner adds a bank account with its IBAN and the mandate and sees it listed; an invalid IBAN and
a missing mandate are refused at their fields; a top-up by SEPA shows as processing and adds no
credit until the bank confirms it. The test works in an account of its own."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in

PAGE = "/billing/payment-methods"
# localstripe lets a debit from this account fail a moment after it was accepted: the payment
# stays "processing" in between, as every SEPA payment does on real Stripe.
SLOW_FAILING_IBAN = "DE62 3704 0044 0532 0130 01"


def _own_account(live_app: LiveApp) -> str:
    email = f"sepa-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup("new_account", name="Sepa Test GmbH", users=[(email, "Erika Mustermann", "owner")])
    return email


def _fill(page: Page, iban: str, *, accept: bool = True) -> None:
    page.get_by_label("Account holder name").fill("Erika Mustermann")
    page.get_by_label("Email").fill("erika@example.com")
    page.get_by_label("IBAN").fill(iban)
    if accept:
        page.get_by_label("I accept the SEPA Direct Debit mandate above.").check()
    page.get_by_role("button", name="Save bank account").click()


def test_an_owner_adds_a_bank_account_and_bad_details_are_refused_at_their_fields(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.goto(PAGE)
    page.get_by_role("button", name="Add bank account (SEPA)").click()
    expect(page.locator("#sepa-mandate")).to_contain_text("you authorise")

    _fill(page, "DE89 3704 0044 0532 0130 01")
    expect(page.locator("#iban-error")).to_have_text("This IBAN is not valid. Check it against your bank statement.")
    page.get_by_label("I accept the SEPA Direct Debit mandate above.").uncheck()
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Save bank account").click()
    expect(page.locator("#mandate-error")).to_have_text("Accept the SEPA Direct Debit mandate to continue.")
    expect(page.locator("#iban-error")).to_have_count(0)
    expect(page.locator("#payment-methods-table")).to_have_count(0)

    page.get_by_label("I accept the SEPA Direct Debit mandate above.").check()
    page.get_by_role("button", name="Save bank account").click()
    expect(page.get_by_role("status")).to_have_text("SEPA Debit •••• 3000 saved.")
    row = page.locator("#payment-methods-table tbody tr").filter(has_text="SEPA Debit •••• 3000")
    expect(row).to_contain_text("Bank code 37040044")
    expect(row).to_contain_text("Erika Mustermann")
    expect(row).to_contain_text("Default Card")


def test_a_sepa_top_up_is_processing_then_fails_on_screen_and_credits_nothing(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.goto(PAGE)
    page.get_by_role("button", name="Add bank account (SEPA)").click()
    _fill(page, SLOW_FAILING_IBAN)
    expect(page.get_by_role("status")).to_have_text("SEPA Debit •••• 3001 saved.")

    page.goto("/billing/add-usage-credits")
    expect(page.locator("#payment_method")).to_contain_text("SEPA Debit •••• 3001")
    page.get_by_label("Payment amount").fill("20")
    page.get_by_role("button", name="Add to my balance").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your payment is processing. Credits are added as soon as it succeeds."
    )
    recent = page.locator("#recent-payments tbody tr").first
    expect(recent).to_contain_text("SEPA Debit •••• 3001")
    expect(recent).to_contain_text("$20.00")
    # The bank refuses this IBAN's debit a moment later: Stripe's webhook changes the row on screen.
    expect(recent).to_contain_text("Failed", timeout=15_000)
    page.goto("/billing")
    expect(page.locator("#remaining-credits")).to_have_text("$0.00")
