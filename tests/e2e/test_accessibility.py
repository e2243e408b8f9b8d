"""Accessibility: axe-core (the pinned axe-playwright-python's own copy, so offline) finds no serious
or critical violation on the signed-out pages nor on any console page of the page table, and
signing in, adding usage credits and inviting a colleague work with the keyboard alone."""

from __future__ import annotations

import uuid

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, MAIN_CONTROL, LiveApp

AXE = Axe()


def _serious_violations(page: Page) -> list[str]:
    # Once what opens (a drawer, a dialog, the chat box) has faded in: half-way its text is half as dark.
    page.wait_for_function(
        "() => document.getAnimations()"
        ".every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"
    )
    violations = AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def _tab_to(page: Page, target: Locator, *, most: int = 80) -> None:
    """Press Tab until `target` has the focus: it is reachable from the keyboard."""
    for _ in range(most):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus")


def test_no_page_has_a_serious_or_critical_violation(page: Page, live_app: LiveApp, owner_session):
    problems: dict[str, list[str]] = {}
    for path, heading in (("/sign-in", "Sign in"), ("/forgot-password", "Forgot your password?")):
        page.goto(path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        problems[path] = _serious_violations(page)

    page.context.add_cookies(owner_session["storage_state"]["cookies"])
    for entry in live_app.setup("console_pages"):
        page.goto(entry["route"])
        expect(page.get_by_role("heading", level=1, name=entry["title"], exact=True)).to_be_visible()
        role, name = MAIN_CONTROL[entry["route"]]
        expect(page.get_by_role(role, name=name).first).to_be_visible()  # type: ignore[arg-type]
        problems[entry["route"]] = _serious_violations(page)

    # What opens over a page: the drawer of a phone, a dialog and the chat box.
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("dialog", name="Menu")).to_be_visible()
    problems["the menu drawer"] = _serious_violations(page)
    page.keyboard.press("Escape")
    page.goto("/team")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    problems["the invitation dialog"] = _serious_violations(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Chat with support").click()
    expect(page.locator("#chat-log")).to_be_visible()
    problems["the chat box"] = _serious_violations(page)

    assert not {where: found for where, found in problems.items() if found}


def test_sign_in_top_up_and_invite_with_the_keyboard_alone(page: Page, owner_session):
    page.goto("/sign-in")
    email = page.get_by_label("Email")
    _tab_to(page, email)
    page.keyboard.type(owner_session["email"])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#header-account-name")).to_be_visible()

    # Add Usage Credits: the default card is chosen; the amount, then Enter.
    page.goto("/billing/add-usage-credits")
    expect(page.locator("#payment_method")).to_contain_text("4242")
    _tab_to(page, page.get_by_label("Payment amount"))
    page.keyboard.type("25")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Added $25.00 to your balance.")

    # Team: Invite opens the dialog with the focus in it; the role is chosen with the arrows.
    page.goto("/team")
    expect(page.get_by_role("heading", level=1, name="Team")).to_be_visible()
    _tab_to(page, page.get_by_role("button", name="Invite"))
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    _tab_to(page, dialog.get_by_label("Email"))
    invitee = f"keys-{uuid.uuid4().hex[:8]}@example.com"
    page.keyboard.type(invitee)
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Full name")).to_be_focused()
    page.keyboard.type("Kay Board")
    _tab_to(page, dialog.get_by_label("Role"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("option", name="Admin", exact=True)).to_be_visible()
    page.keyboard.type("Adm")  # the list's type-ahead moves to Admin
    expect(page.get_by_role("option", name="Admin", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog.get_by_label("Role")).to_contain_text("Admin")
    _tab_to(page, dialog.get_by_role("button", name="Send invitation"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(
        f"Invitation sent to {invitee}. The link in it is valid for 7 days."
    )
    expect(page.locator("tr", has_text=invitee)).to_contain_text("Admin")
