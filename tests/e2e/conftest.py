"""End-to-end harness: the console started exactly as `make run` starts it (tests/console.py: python
-m app.cli serve on free ports with its own data directory), driven by Playwright in Debian's
Chromium."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.console import Console, ConsoleDidNotStart
from tests.live_backend import redis_reason

DEMO_PASSWORD = "e2e-demo-password"
E2E_REDIS_URL = "redis://127.0.0.1:6379/8"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.exit("No Chromium found: `make test` installs Debian's chromium package.", returncode=1)


class LiveApp(Console):
    def link_in_log(self, to: str, path: str, timeout: float = 15) -> str:
        """The link holding `path` in the newest email to that address, read from the app's log
        (without SMTP_URL the log is the mailbox, as a developer running `make run` reads it)."""
        pattern = re.compile(
            rf"email #\d+ to {re.escape(to)}: (?:(?!email #).)*?(https?://\S*{re.escape(path)}\S*)", re.DOTALL
        )
        deadline = time.monotonic() + timeout
        while True:
            links = pattern.findall((self.data_dir / "app.log").read_text())
            if links:
                return links[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no email to {to} with a {path} link in the app's log")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def live_app() -> Iterator[LiveApp]:
    env = {
        "DEMO_PASSWORD": DEMO_PASSWORD,
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "REFLEX_WEB_WORKDIR": os.environ.get("E2E_WEB_DIR", ".web-e2e"),
    }
    if redis_reason() is None:
        # As production with several workers: page state in Redis, live updates through it (a
        # test serves the API from a second process).
        env["REDIS_URL"] = E2E_REDIS_URL
    try:
        app = LiveApp.start(Path(tempfile.mkdtemp(prefix="ledgerdesk-e2e-")), env, timeout=420)
    except ConsoleDidNotStart as exc:
        pytest.exit(str(exc), returncode=1)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def base_url(live_app: LiveApp) -> str:
    return live_app.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": _chromium(),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def watch_page_errors(page: Page) -> list[str]:
    """The JavaScript errors of `page` as they happen (a test asserts the list stays empty)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The Content-Security-Policy must let every page work: a blocked script, frame or request fails.
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.set_default_timeout(15_000)
    return errors


@pytest.fixture(autouse=True)
def _fail_on_page_errors(page: Page):
    errors = watch_page_errors(page)
    expect.set_options(timeout=15_000)
    yield
    assert not errors, f"JavaScript errors on the page: {errors}"


# The control a visitor of each page comes for (role, accessible name), for the new account's
# owner of `owner_session`.
MAIN_CONTROL: dict[str, tuple[str, str | re.Pattern[str]]] = {
    "/profile": ("button", "Save name"),
    "/": ("link", "Update company details"),
    "/company": ("button", "Save Changes"),
    "/plans": ("button", "Change seats"),
    "/products": ("button", re.compile(r"^Sign up for ")),
    "/api-keys": ("button", "Add API Key"),
    "/team": ("button", "Invite"),
    "/roles": ("button", "New role"),
    "/audit-log": ("button", "Apply filters"),
    "/billing": ("button", "Edit address"),
    "/billing/invoices": ("button", re.compile(r"^Pay invoice ")),
    "/billing/payment-methods": ("button", "Add New Credit Card"),
    "/billing/spend-management": ("button", "Save Changes"),
    "/billing/add-usage-credits": ("button", "Add to my balance"),
    "/billing/auto-recharge": ("button", "Save changes"),
    "/billing/invoice-address": ("button", "Save changes"),
    "/billing/invoice-notifications": ("button", "Updates"),
    "/billing/tax-settings": ("button", "Add Tax Registration"),
    "/billing/usage": ("button", "Export CSV"),
    "/billing/balance-history": ("button", "Export CSV"),
}


@pytest.fixture(scope="module")
def owner_session(browser: Browser, live_app: LiveApp) -> dict[str, Any]:
    """The owner of a new account with something on every page (Pro, a Visa card, credits, an
    API key, an open invoice), signed in once for the module: `storage_state` (the session
    cookie) for `browser.new_context`, so a test that visits every page at several sizes signs
    in once."""
    email = f"owner-{uuid.uuid4().hex[:8]}@layout.example.com"
    live_app.setup(
        "new_account",
        name="Layout and Sons",
        users=[[email, "Olive Owner", "owner"]],
        plan="pro",
        visa=True,
        credits_cents=10_000,
        api_keys=1,
        open_invoice_cents=5_000,
    )
    context = browser.new_context(base_url=live_app.url)
    sign_in(context.new_page(), email)
    storage_state = context.storage_state()
    context.close()
    return {"email": email, "storage_state": storage_state}


def sign_in(page: Page, email: str, password: str = DEMO_PASSWORD, *, next_path: str = "/") -> None:
    page.goto(f"/sign-in?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#header-account-name")).to_be_visible()


def expect_after_refresh(locator: Locator, text: str, refresh: Callable[[], None], *, timeout: float = 30) -> None:
    """For what reaches a page only when it is loaded again (a job's or a delivery's result): wait
    for the locator to contain the text, refreshing between short waits, up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            expect(locator).to_contain_text(text, timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        refresh()
