"""Invoices, Invoice Address, Invoice Notifications and Tax Settings in the browser. Each test
signs in to an account of its own (made through live_app.setup), so the shared demo account
is left alone."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in


def _own_account(live_app: LiveApp, *, card: bool = False, open_invoice_cents: int = 0, credits_cents: int = 0) -> str:
    """A new Pro account with an owner (and the demo's Visa card, an open invoice, usage credits);
    the owner's email."""
    email = f"invoices-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup(
        "new_account",
        name="Invoice Test Co",
        timezone="Europe/Berlin",
        plan="pro",
        users=[(email, "Ivy Invoices", "owner")],
        demo_card=card,
        open_invoice_cents=open_invoice_cents,
        credits_cents=credits_cents,
    )
    return email


def test_edit_the_invoice_address_field_by_field_and_see_it_on_the_overview(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.goto("/billing/invoice-address")
    expect(page.get_by_role("heading", name="Invoice Address", level=1)).to_be_visible()

    page.get_by_label("Company Name").fill("Acme Europe GmbH")
    page.get_by_label("Address 1").fill("Friedrichstraße 68")
    page.get_by_label("Address 2").fill("3rd floor")
    page.get_by_label("City").fill("Hamburg")
    page.get_by_label("Postal code").fill("2009")
    page.get_by_label("Country").select_option("DE")
    # The region becomes a list of Germany's states once the server has the new country.
    expect(page.get_by_label("Region/Province")).to_have_js_property("tagName", "SELECT")
    page.get_by_label("Region/Province").select_option("Hamburg")
    page.get_by_label("Purchase order (PO) number").fill("PO-7731")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#postal_code-error")).to_have_text("Enter a postal code of Germany, such as 10115.")
    expect(page.locator("#company_name-error")).to_have_count(0)

    page.get_by_label("Postal code").fill("20095")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Your invoice address is saved.")
    expect(page.locator("#postal_code-error")).to_have_count(0)

    page.goto("/billing")
    card = page.locator("#invoice-address-card")
    for line in ("Acme Europe GmbH", "Friedrichstraße 68", "3rd floor", "20095 Hamburg", "Germany", "PO PO-7731"):
        expect(card).to_contain_text(line)
    card.get_by_role("button", name="Edit address").click()
    expect(page).to_have_url(re.compile(r"/billing/invoice-address$"))
    expect(page.get_by_label("City")).to_have_value("Hamburg")


def test_set_the_billing_email_and_see_a_bad_one_refused(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.goto("/billing/invoice-notifications")
    expect(page.get_by_role("heading", name="Billing email")).to_be_visible()
    expect(page.get_by_text("Invoices and other billing notifications will be sent here")).to_be_visible()

    page.get_by_label("Email").fill("accounts@acme")
    page.get_by_role("button", name="Updates").click()
    expect(page.locator("#email-error")).to_contain_text("Enter a valid email address")

    page.get_by_label("Email").fill("accounts@acme.example")
    page.get_by_role("button", name="Updates").click()
    expect(page.get_by_role("status")).to_have_text(
        "Invoices and billing notifications now go to accounts@acme.example."
    )
    page.goto("/billing")
    expect(page.locator("#billing-email-card")).to_contain_text("accounts@acme.example")


def test_add_a_valid_eu_vat_number_and_see_an_invalid_one_refused(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.goto("/billing/tax-settings")
    expect(page.get_by_role("heading", name="Tax Settings", level=1)).to_be_visible()
    expect(page.locator("#tax-registrations-empty")).to_be_visible()

    page.get_by_role("button", name="Add Tax Registration").click()
    page.get_by_label("Country").select_option("DE")
    expect(page.get_by_label("Type")).to_have_value("eu_vat")
    page.get_by_label("Value").fill("DE 136 695 977")
    page.get_by_role("button", name="Add registration").click()
    expect(page.locator("#tax_value-error")).to_have_text(
        "This is not a valid European VAT number of Germany (the number's checksum or check digit is invalid)."
    )
    expect(page.locator("#tax-registrations-empty")).to_be_visible()

    page.get_by_label("Value").fill("DE 136 695 976")
    page.get_by_role("button", name="Add registration").click()
    expect(page.get_by_role("status")).to_have_text("European VAT number DE136695976 added.")
    row = page.locator("#tax-registrations tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Germany")
    expect(row).to_contain_text("European VAT number")
    expect(row).to_contain_text("DE136695976")
    # Whatever Stripe says (localstripe verifies this number).
    expect(row.get_by_text(re.compile(r"^(verified|unverified)$"))).to_be_visible()

    row.get_by_role("button", name="Remove tax registration DE136695976").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Remove European VAT number DE136695976?")
    dialog.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_have_text("European VAT number DE136695976 removed.")
    expect(page.locator("#tax-registrations-empty")).to_be_visible()


def test_pay_the_open_invoice_with_the_demo_card_and_see_it_move_to_the_history(page: Page, live_app: LiveApp):
    email = _own_account(live_app, card=True, open_invoice_cents=14_500)
    sign_in(page, email)
    page.goto("/billing/invoices")
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()
    due = page.locator("#payments-due tbody tr")
    expect(due).to_have_count(1)
    expect(due).to_contain_text("$145.00")
    number = due.get_attribute("data-invoice")
    expect(page.locator("#invoice-history-empty")).to_be_visible()

    with page.expect_download() as download:
        due.get_by_role("link", name=f"Download PDF of invoice {number}").click()
    assert download.value.suggested_filename == f"invoice-{number}.pdf"

    due.get_by_role("button", name=f"Pay invoice {number}").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Pay invoice {number}")
    expect(dialog.get_by_role("combobox")).to_contain_text("Visa •••• 4242 (default)")
    # A double-click pays once: the second click replays the first payment.
    dialog.get_by_role("button", name="Pay $145.00").dblclick()

    expect(page.get_by_role("status")).to_have_text(f"Invoice {number} is paid. Thank you.")
    page.wait_for_timeout(1000)  # whatever the second click finds, it has finished
    assert live_app.setup("charges_and_payments", email=email) == {
        "charged": [14_500],
        "payments": [["invoice", 14_500, "succeeded"]],
    }
    expect(page.locator("#payments-due-empty")).to_be_visible()
    paid = page.locator("#invoice-history tbody tr")
    expect(paid).to_have_count(1)
    expect(paid).to_contain_text(number)
    expect(paid).to_contain_text("$145.00")
    # The payment date is today's, in the account's timezone.
    expect(paid.locator("td").nth(2)).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}$"))


def test_pay_an_open_invoice_from_the_credit_balance_and_see_it_in_balance_history(page: Page, live_app: LiveApp):
    sign_in(page, _own_account(live_app, open_invoice_cents=14_500, credits_cents=20_000))
    page.goto("/billing/invoices")
    due = page.locator("#payments-due tbody tr")
    number = due.get_attribute("data-invoice")
    due.get_by_role("button", name=f"Pay invoice {number} from your credit balance").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Applied credit balance to invoice")
    dialog.get_by_role("button", name="Pay $145.00 from balance").click()
    expect(page.get_by_role("status")).to_have_text(f"Invoice {number} is paid from your credit balance. Thank you.")
    expect(page.locator("#payments-due-empty")).to_be_visible()
    page.goto("/billing/balance-history")
    first = page.locator("#balance-history-table tbody tr").first
    expect(first).to_contain_text("Applied credit balance to invoice")
    expect(first).to_contain_text("-$145.00")
