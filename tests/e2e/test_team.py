"""Team and Roles in the browser: an invitation accepted through the emailed link, a blocked
user thrown out on their next navigation, and a custom role limiting what its user sees.
Each test works in an account of its own, so the shared demo account is left alone."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LiveApp, sign_in

SIDEBAR = "nav[aria-label='Console']"
NEW_PASSWORD = "joined-the-team-2026"


def _own_account(live_app: LiveApp) -> str:
    """A new Pro account with an owner; the owner's email."""
    email = f"team-owner-{uuid.uuid4().hex[:10]}@example.com"
    live_app.setup("new_account", name="Team Test Co", plan="pro", users=[(email, "Tess Owner", "owner")])
    return email


def _invite(page: Page, email: str, full_name: str, role: str) -> None:
    page.goto("/team")
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    page.get_by_role("button", name="Invite").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Full name").fill(full_name)
    dialog.get_by_label("Role").click()
    page.get_by_role("option", name=role, exact=True).click()
    dialog.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text(f"Invitation sent to {email}. The link in it is valid for 7 days.")
    expect(_row(page, email)).to_contain_text("Invited")


def _row(page: Page, email: str):
    return page.locator("#team-table tbody tr").filter(has_text=email)


def _accept_link(live_app: LiveApp, email: str) -> str:
    return live_app.setup("link_in_last_email", to=email, path="accept-invite")


def _join(page: Page, live_app: LiveApp, email: str) -> None:
    """Accept the invitation in this page and sign in as the new user."""
    page.goto(_accept_link(live_app, email))
    expect(page.get_by_role("heading", name="Join Team Test Co")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password and join").click()
    expect(page.get_by_role("heading", name="Welcome aboard")).to_be_visible()
    sign_in(page, email, NEW_PASSWORD)


def test_invited_user_joins_with_the_role_and_blocking_ends_their_session(
    page: Page, browser: Browser, live_app: LiveApp
):
    sign_in(page, _own_account(live_app))
    expect(page.locator(SIDEBAR).get_by_role("link", name="Team")).to_be_visible()
    email = f"new-admin-{uuid.uuid4().hex[:8]}@example.com"

    # The form refuses a bad address next to the field, and changes nothing.
    page.goto("/team")
    expect(page.locator("#team-seats")).to_have_text("1 of 5 seats used")
    page.get_by_role("button", name="Invite").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Email").fill("not-an-email")
    dialog.get_by_label("Full name").fill("Ada Admin")
    dialog.get_by_role("button", name="Send invitation").click()
    expect(dialog.locator("#invite_email-error")).to_have_text("Enter a valid email address, like name@example.com.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("#team-seats")).to_have_text("1 of 5 seats used")

    _invite(page, email, "Ada Admin", "Admin")
    expect(page.locator("#team-seats")).to_have_text("2 of 5 seats used")

    # The new user, in a browser of their own.
    joiner_context = browser.new_context(base_url=live_app.url)
    joiner = joiner_context.new_page()
    try:
        _join(joiner, live_app, email)
        expect(joiner.locator("#header-role")).to_have_text("Admin")
        sidebar = joiner.locator(SIDEBAR)
        expect(sidebar.get_by_role("group", name="Billing")).to_be_visible()
        sidebar.get_by_role("link", name="Team").click()
        expect(joiner.get_by_role("heading", name="Team", level=1)).to_be_visible()
        # An admin cannot act on the owner, nor on themselves.
        expect(
            joiner.locator("#team-table tbody tr").filter(has_text="Tess Owner").get_by_role("button")
        ).to_have_count(0)

        # The owner blocks them, after confirming.
        page.reload()
        row = _row(page, email)
        expect(row).to_contain_text("Active")
        row.get_by_role("button", name=f"Actions for {email}").click()
        page.get_by_role("menuitem", name="Block").click()
        confirm = page.get_by_role("alertdialog")
        expect(confirm).to_contain_text("Block Ada Admin?")
        confirm.get_by_role("button", name="Block").click()
        expect(page.get_by_role("status")).to_have_text(f"{email} is blocked. Their sessions have ended.")
        expect(row).to_contain_text("Blocked")
        expect(page.locator("#team-seats")).to_have_text("1 of 5 seats used")

        # Their very next navigation lands on sign-in, and signing in is refused.
        joiner.locator(SIDEBAR).get_by_role("link", name="Info").click()
        expect(joiner).to_have_url(re.compile(r"/sign-in"))
        joiner.get_by_label("Email").fill(email)
        joiner.get_by_label("Password").fill(NEW_PASSWORD)
        joiner.get_by_role("button", name="Sign in").click()
        expect(joiner.get_by_role("alert")).to_have_text("This user is blocked. Ask an owner of your account.")
    finally:
        joiner_context.close()


def test_custom_role_made_on_the_roles_page_limits_what_its_user_sees(page: Page, browser: Browser, live_app: LiveApp):
    sign_in(page, _own_account(live_app))
    page.locator(SIDEBAR).get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", name="Roles", level=1)).to_be_visible()
    owner_row = page.locator("#roles-table tbody tr").filter(has_text="Owner")
    expect(owner_row.first).to_contain_text("Read-only")

    page.get_by_role("button", name="New role").click()
    editor = page.get_by_role("dialog")
    expect(editor.get_by_role("checkbox", name="See the Info page")).to_be_checked()
    expect(editor.get_by_role("checkbox", name="See the Info page")).to_be_disabled()
    editor.get_by_role("button", name="Save role").click()
    expect(editor.locator("#role_name-error")).to_have_text("Enter a name for the role.")
    editor.get_by_label("Role name").fill("Billing viewer")
    editor.get_by_role("checkbox", name="See billing").click()
    expect(editor.get_by_role("checkbox", name="See billing")).to_be_checked()
    editor.get_by_role("button", name="Save role").click()
    expect(page.get_by_role("status")).to_have_text("Role Billing viewer created. Give it to users on the Team page.")
    role_row = page.locator("#roles-table tbody tr").filter(has_text="Billing viewer")
    expect(role_row).to_contain_text("See billing")
    expect(role_row).not_to_contain_text("Manage billing and payments")

    email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
    _invite(page, email, "Val Viewer", "Billing viewer")

    viewer_context = browser.new_context(base_url=live_app.url)
    viewer = viewer_context.new_page()
    try:
        _join(viewer, live_app, email)
        expect(viewer.locator("#header-role")).to_have_text("Billing viewer")
        sidebar = viewer.locator(SIDEBAR)
        expect(sidebar.get_by_role("group", name="Billing")).to_be_visible()
        expect(sidebar.get_by_role("group", name="Administration")).to_have_count(0)
        viewer.goto("/team")
        expect(viewer.locator("#no-access")).to_be_visible()
        expect(viewer.locator("#team-table")).to_have_count(0)

        # The role is in use: deleting it is refused with the count.
        page.goto("/roles")
        role_row.get_by_role("button", name="Delete role Billing viewer").click()
        expect(page.locator("#delete-blocker")).to_have_text(
            "1 user has the role Billing viewer. Move them to another role on the Team page first."
        )
        page.get_by_role("alertdialog").get_by_role("button", name="Close").click()

        # Taking billing away applies on the viewer's next navigation.
        role_row.get_by_role("button", name="Edit role Billing viewer").click()
        page.get_by_role("dialog").get_by_role("checkbox", name="See billing").click()
        page.get_by_role("dialog").get_by_role("button", name="Save role").click()
        expect(page.get_by_role("status")).to_contain_text("Role Billing viewer saved.")
        viewer.goto("/billing/balance-history")
        expect(viewer.locator("#no-access")).to_be_visible()
        expect(viewer.locator(SIDEBAR).get_by_role("group", name="Billing")).to_have_count(0)
    finally:
        viewer_context.close()
