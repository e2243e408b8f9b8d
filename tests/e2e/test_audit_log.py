"""The Audit Log in the browser: an owner's change appears with who and what and can be
filtered; an admin has no Audit Log. The test works in an account of its own."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in

SIDEBAR = "nav[aria-label='Console']"


def _own_account(live_app: LiveApp) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    owner, admin = f"audit-owner-{suffix}@example.com", f"audit-admin-{suffix}@example.com"
    live_app.setup(
        "new_account",
        name="Audit Test Co",
        users=[(owner, "Otto Owner", "owner"), (admin, "Ada Admin", "admin")],
    )
    return owner, admin


def test_an_owner_reads_and_filters_the_changes_and_an_admin_cannot(page: Page, live_app: LiveApp):
    owner, admin = _own_account(live_app)
    sign_in(page, owner, next_path="/api-keys")
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_label("Name (optional)").fill("Billing sync")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("will not be shown again")
    dialog.get_by_role("button", name="Done").click()

    page.goto("/audit-log")
    expect(page.get_by_role("heading", name="Audit Log", level=1)).to_be_visible()
    row = page.locator("#audit-log-table tbody tr").first
    expect(row).to_contain_text("Created API key “Billing sync”")
    expect(row).to_contain_text(f"Otto Owner ({owner})")
    expect(row).to_contain_text("API keys")

    page.locator("#category").click()
    page.get_by_role("option", name="Team").click()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-log-empty")).to_have_text("No changes match these filters.")
    page.locator("#category").click()
    page.get_by_role("option", name="API keys").click()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-log-table tbody tr")).to_have_count(1)

    page.context.clear_cookies()
    sign_in(page, admin)
    expect(page.locator(SIDEBAR).get_by_role("link", name="Audit Log")).to_have_count(0)
    page.goto("/audit-log")
    expect(page.locator("#no-access")).to_be_visible()
