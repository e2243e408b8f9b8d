"""Plans in the browser: the owner upgrades (a double-click charging once) and downgrades with the
amounts shown in the confirmation first, the downgrade's credit shows in Balance History and on the Overview, seats
are added and refused below the plan's own and the next payment follows them, a paid plan without a card sends the user to
Payment Methods, and a custom-priced account sees it is invoiced, and past due when an invoice is. Each test signs in to an
account of its own, so the shared demo account is left alone."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from app.models import utcnow
from app.services.money import format_usd
from app.services.subscription import prorate
from tests.e2e.conftest import LiveApp, sign_in

PAGE = "/plans"


def _own_account(
    live_app: LiveApp,
    *,
    plan: str = "basic",
    with_card: bool = True,
    invoice_priced: bool = False,
    renewal_open: bool = False,
    overdue_invoice: bool = False,
) -> str:
    """A new account with an owner (balance $0) and, if asked, a default Visa card, this month's
    renewal left unpaid, and an invoice past its due date; the owner's email."""
    email = f"plans-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup(
        "new_account",
        name="Plans Test Co",
        plan=plan,
        users=[(email, "Pat Plans", "owner")],
        invoice_priced=invoice_priced,
        visa=with_card,
        renewal_open=renewal_open,
        open_invoice_cents=50_000 if overdue_invoice else 0,
        open_invoice_due_days=-2,
    )
    return email


def _open(page: Page, email: str) -> None:
    sign_in(page, email)
    page.goto(PAGE)
    expect(page.get_by_role("heading", name="Plans", level=1)).to_be_visible()


def _today_share(old_cents: int, new_cents: int) -> str:
    """The prorated amount of a change made now, as the page shows it."""
    return format_usd(abs(prorate(old_cents, new_cents, utcnow()).amount_cents))


def test_upgrade_and_downgrade_show_their_amounts_first_and_the_credit_reaches_the_balance(
    page: Page, live_app: LiveApp
):
    email = _own_account(live_app)
    _open(page, email)
    expect(page.locator("#current-plan-name")).to_have_text("Basic")
    expect(page.locator("#plan-status")).to_have_text("Active")
    expect(page.locator("#header-past-due")).to_have_count(0)
    expect(page.locator("#plan-card")).to_have_text("Visa •••• 4242")
    expect(page.locator("[data-plan='basic']")).to_contain_text("Current plan")

    # Basic to Pro: its 5 seats at $29.00, charged for the rest of this month.
    charge = _today_share(0, 14_500)
    page.get_by_role("button", name="Upgrade to Pro").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_role("heading", name="Upgrade to Pro")).to_be_visible()
    expect(dialog).to_contain_text("After the change: Pro, $29.00 × 5 seats = $145.00 per month.")
    expect(dialog).to_contain_text(f"Charged now to Visa •••• 4242: {charge}")
    # Cancelling changes nothing.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#current-plan-name")).to_have_text("Basic")

    page.get_by_role("button", name="Upgrade to Pro").click()
    # A double-click charges once: the second click replays the first payment.
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").dblclick()
    expect(page.get_by_role("status")).to_have_text(
        f"You are now on Pro. {charge} was charged to your card; the paid invoice is on the Invoices page."
    )
    page.wait_for_timeout(1000)  # whatever the second click finds, it has finished
    cents = abs(prorate(0, 14_500, utcnow()).amount_cents)
    assert live_app.setup("charges_and_payments", email=email) == {
        "charged": [cents],
        "payments": [["plan", cents, "succeeded"]],
    }
    expect(page.locator("#current-plan-name")).to_have_text("Pro")
    expect(page.locator("#monthly-total")).to_have_text("$29.00 × 5 seats = $145.00 per month")
    expect(page.locator("#header-plan")).to_have_text("Pro plan")

    # Cancelling Pro is the downgrade to Basic: the unused days come back as usage credits. On a
    # short window the button is far below the page's messages: the result is brought into view.
    page.set_viewport_size({"width": 1280, "height": 420})
    page.get_by_role("button", name="Downgrade to Basic").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_role("heading", name="Downgrade to Basic")).to_be_visible()
    expect(dialog).to_contain_text(f"Credited to your balance now: {charge}")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text(
        f"You are now on Basic. {charge} was credited to your balance; it is listed in Balance History."
    )
    expect(page.get_by_role("status")).to_be_in_viewport()
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(page.locator("#current-plan-name")).to_have_text("Basic")

    page.goto("/billing/balance-history")
    first_row = page.locator("#balance-history-table tbody tr").first
    expect(first_row).to_contain_text("Downgrade from Pro to Basic")
    expect(first_row).to_contain_text(charge)
    page.goto("/billing")
    expect(page.locator("#remaining-credits")).to_have_text(charge)


def test_a_downgrade_of_an_unpaid_month_comes_off_the_open_invoice_not_onto_the_balance(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, plan="pro", renewal_open=True))
    share = _today_share(14_500, 0)
    page.get_by_role("button", name="Downgrade to Basic").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Only time you have paid for is credited.")
    expect(dialog).to_contain_text("Taken off your unpaid invoice")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text(
        f"You are now on Basic. {share} was taken off your unpaid invoice, issued again on the Invoices page."
    )
    page.goto("/billing")
    expect(page.locator("#remaining-credits")).to_have_text("$0.00")


def test_seats_are_added_at_the_prorated_rate_and_never_below_the_plans_own(page: Page, live_app: LiveApp):
    email = _own_account(live_app, plan="pro")
    _open(page, email)
    expect(page.locator("#seats-purchased")).to_have_text("5")
    expect(page.locator("#seats-used")).to_have_text("1")
    # What is due next: the 5 seats at the start of next month, with a preview of the lines.
    expect(page.locator("#next-payment-total")).to_have_text("$145.00")
    expect(page.locator("#next-payment-preview")).to_contain_text("Pro plan seats")

    seats = page.get_by_label("Number of seats")
    seats.fill("4")
    page.get_by_role("button", name="Change seats").click()
    expect(page.locator("#seats-error")).to_have_text("Your Pro plan includes 5 seats; you cannot have fewer.")

    charge = _today_share(14_500, 20_300)
    seats.fill("7")
    page.get_by_role("button", name="Change seats").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_role("heading", name="Change seats")).to_be_visible()
    expect(dialog).to_contain_text("After the change: Pro, $29.00 × 7 seats = $203.00 per month.")
    expect(dialog).to_contain_text(f"Charged now to Visa •••• 4242: {charge}")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text(
        f"You now have 7 seats. {charge} was charged to your card; the paid invoice is on the Invoices page."
    )
    expect(page.locator("#seats-purchased")).to_have_text("7")
    expect(page.locator("#monthly-total")).to_have_text("$29.00 × 7 seats = $203.00 per month")
    expect(page.locator("#next-payment-total")).to_have_text("$203.00")
    page.goto("/billing")
    expect(page.locator("#next-payment-total")).to_have_text("$203.00")

    page.goto("/team")
    expect(page.locator("#team-seats")).to_have_text("1 of 7 seats used")


def test_a_paid_plan_needs_a_card_and_one_that_needs_3d_secure_is_authenticated_in_the_page(
    page: Page, live_app: LiveApp
):
    email = _own_account(live_app, with_card=False)
    _open(page, email)
    expect(page.locator("#no-card")).to_contain_text("No card on file.")
    page.get_by_role("button", name="Upgrade to Business").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("A paid plan needs a card on file.")
    expect(dialog.get_by_role("button", name="Confirm")).to_have_count(0)
    dialog.get_by_role("button", name="Go to Payment Methods").click()
    expect(page.get_by_role("heading", name="Payment Methods", level=1)).to_be_visible()
    page.goto(PAGE)
    expect(page.locator("#current-plan-name")).to_have_text("Basic")

    # A card that needs 3-D Secure: the confirmation steps aside for the step, done in the page.
    live_app.setup("default_card", email=email, number="4000002500003155")
    page.reload()
    page.get_by_role("button", name="Upgrade to Pro").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure step
    expect(page.locator("#current-plan-name")).to_have_text("Pro")
    expect(page.get_by_role("alertdialog")).to_have_count(0)


def test_a_custom_priced_account_sees_it_is_invoiced_and_cannot_change_by_itself(page: Page, live_app: LiveApp):
    _open(page, _own_account(live_app, plan="custom", with_card=False, invoice_priced=True, overdue_invoice=True))
    expect(page.locator("#current-plan-name")).to_have_text("Custom")
    # Its invoice is past its due date: the header and the plan's status say so.
    expect(page.locator("#header-past-due")).to_have_text("Past due")
    expect(page.locator("#plan-status")).to_have_text("Past due")
    expect(page.locator("#custom-priced")).to_contain_text("Your account has custom pricing and is invoiced")
    expect(page.locator("#plan-renews")).to_have_text("Invoiced monthly")
    expect(page.locator("#monthly-total")).to_have_text("As agreed in your contract, billed by invoice")
    expect(page.locator("#seats-fixed")).to_have_text("Your seats are as agreed in your contract.")
    expect(page.locator("#plan-catalogue").get_by_role("button")).to_have_count(0)
    expect(page.locator("#no-card")).to_have_count(0)
    page.locator("#past-due").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", level=1)).to_be_visible()
