"""Your Profile in the browser: a member reaches it from their name in the top right, changes
their own name and password, and the same member's other browser is signed out; a wrong
current password is refused at its field. The test works in an account of its own."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, LiveApp, sign_in

SIDEBAR = "nav[aria-label='Console']"
NEW_PASSWORD = "my-own-new-passphrase"


def _member(live_app: LiveApp) -> str:
    """A new account with an owner and a member; the member's email."""
    suffix = uuid.uuid4().hex[:10]
    email = f"profile-member-{suffix}@example.com"
    live_app.setup(
        "new_account",
        name="Profile Test Co",
        users=[(f"profile-owner-{suffix}@example.com", "Olive Owner", "owner"), (email, "Max Member", "member")],
    )
    return email


def test_a_member_changes_their_name_and_password_and_is_signed_out_elsewhere(
    page: Page, browser: Browser, live_app: LiveApp
):
    email = _member(live_app)
    other_context = browser.new_context(base_url=live_app.url)
    elsewhere = other_context.new_page()
    try:
        sign_in(elsewhere, email)
        expect(elsewhere.locator("#user-menu")).to_contain_text("Max Member")

        sign_in(page, email)
        page.locator("#user-menu").click()
        page.get_by_role("menuitem", name="Your profile").click()
        expect(page.get_by_role("heading", name="Your Profile", level=1)).to_be_visible()
        expect(page.locator(SIDEBAR).get_by_role("link", name="Your Profile")).to_be_visible()
        sessions = page.locator("#sessions tbody tr")
        expect(sessions).to_have_count(2)
        expect(sessions.filter(has_text="This device")).to_have_count(1)

        page.get_by_label("Full name").fill("Maxine Member")
        page.get_by_role("button", name="Save name").click()
        expect(page.get_by_role("status")).to_have_text("Your name is saved.")
        expect(page.locator("#user-menu")).to_contain_text("Maxine Member")

        page.get_by_label("Current password").fill("not-the-password")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#current_password-error")).to_have_text("Your current password is not correct.")

        page.get_by_label("Current password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_have_text("Your password is changed. 1 other session signed out.")
        expect(sessions).to_have_count(1)

        # The other browser's next navigation lands on sign-in; the new password works there.
        elsewhere.locator(SIDEBAR).get_by_role("link", name="Info").click()
        expect(elsewhere).to_have_url(re.compile(r"/sign-in"))
        sign_in(elsewhere, email, NEW_PASSWORD)
        expect(elsewhere.locator("#user-menu")).to_contain_text("Maxine Member")
    finally:
        other_context.close()
