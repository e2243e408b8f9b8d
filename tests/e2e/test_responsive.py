"""Phones, tablets and desktops: every console page of the page table at 390×844, 800×1000 and
1400×900 has no sideways page scroll and its main control within the window; below 1024 px the
sidebar's links are in a drawer behind the header's menu button, and the user menu stays reachable.
One browser context per size, all signed in with the module's one session (`owner_session`)."""

from __future__ import annotations

from playwright.sync_api import Browser, FloatRect, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.conftest import MAIN_CONTROL, LiveApp, watch_page_errors

VIEWPORTS = ((390, 844), (800, 1000), (1400, 900))
DRAWER_BELOW = 1024


def _sideways_overflow(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _scrolled_box(control: Locator) -> FloatRect | None:
    """Scroll to the control and measure it. When the page's state arrives it may render the
    control anew, detaching the element found a moment before: the new one is measured then."""
    for _ in range(3):
        try:
            control.scroll_into_view_if_needed()
            if (box := control.bounding_box()) is not None:
                return box
        except PlaywrightError as error:
            if "not attached" not in error.message:
                raise
    return None


def _expect_within_window(page: Page, role: str, name, width: int, where: str) -> None:
    control = page.get_by_role(role, name=name).first  # type: ignore[arg-type]
    expect(control, where).to_be_visible()
    box = _scrolled_box(control)
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, f"{where}: {box}"


def test_every_page_fits_phones_tablets_and_desktops(browser: Browser, live_app: LiveApp, owner_session):
    pages = live_app.setup("console_pages")
    assert set(MAIN_CONTROL) == {p["route"] for p in pages}, "name the main control of every console page"
    for width, height in VIEWPORTS:
        context = browser.new_context(
            base_url=live_app.url,
            viewport={"width": width, "height": height},
            storage_state=owner_session["storage_state"],
        )
        page = context.new_page()
        errors = watch_page_errors(page)
        for entry in pages:
            where = f"{entry['route']} at {width}×{height}"
            page.goto(entry["route"])
            expect(page.get_by_role("heading", level=1, name=entry["title"], exact=True), where).to_be_visible()
            role, name = MAIN_CONTROL[entry["route"]]
            _expect_within_window(page, role, name, width, where)
            assert _sideways_overflow(page) <= 0, f"{where} scrolls sideways"
            # The user menu (profile, sign out) is reachable at every size.
            expect(page.locator("#user-menu"), where).to_be_in_viewport()

        if width < DRAWER_BELOW:
            expect(page.locator("nav.ld-sidebar")).to_be_hidden()
            page.get_by_role("button", name="Menu").click()
            drawer = page.get_by_role("dialog", name="Menu")
            drawer.get_by_role("link", name="Team").click()
            expect(page.get_by_role("heading", level=1, name="Team", exact=True)).to_be_visible()
            expect(drawer).to_be_hidden()
            _expect_within_window(page, "button", "Invite", width, f"Team from the drawer at {width}")
            page.locator("#user-menu").click()
            _expect_within_window(page, "menuitem", "Sign out", width, f"the user menu at {width}")
            page.keyboard.press("Escape")
        else:
            expect(page.get_by_role("button", name="Menu")).to_be_hidden()
            # The sidebar's background runs the full height of a page longer than the window.
            page.goto("/billing/spend-management")
            expect(page.get_by_role("button", name="Save Changes")).to_be_visible()
            sidebar, main = page.locator("nav.ld-sidebar").bounding_box(), page.locator("main").bounding_box()
            assert sidebar and main and main["height"] > height - 100
            assert sidebar["y"] + sidebar["height"] >= main["y"] + main["height"] - 1
        assert not errors, f"JavaScript errors at {width}×{height}: {errors}"
        context.close()
