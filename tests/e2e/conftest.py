"""End-to-end harness: the console started exactly as `make run` starts it (python -m app.cli
serve), on free ports with its own data directory, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.live_backend import redis_reason

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "e2e-demo-password"
E2E_REDIS_URL = "redis://127.0.0.1:6379/8"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.exit("No Chromium found: `make test` installs Debian's chromium package.", returncode=1)


class _SetupWorker:
    """The child process that runs tests/e2e/setup_helpers.py's functions (`--serve`), started at
    the first call and kept: one import of the app for the whole run."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen[str] | None = None

    def call(self, function: str, arguments: dict[str, Any], timeout: float = 60) -> Any:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.setup_helpers", "--serve"],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"function": function, "arguments": arguments}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise AssertionError(f"{function} did not answer in {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the setup process ended during {function}")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


class LiveApp:
    def __init__(self, url: str, data_dir: Path, env: dict[str, str]):
        self.url = url
        self.data_dir = data_dir
        self.env = env
        self._setup = _SetupWorker(env)

    def setup(self, function: str, **arguments: Any) -> Any:
        """Call a function of tests/e2e/setup_helpers.py against the app's own database (make an
        account, read the outbox); its result."""
        return self._setup.call(function, arguments)

    def close(self) -> None:
        self._setup.close()

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
    app_port, stripe_port = _free_port(), _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-e2e-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SMTP_", "DATABASE_URL", "REDIS_URL"))},
        "APP_PORT": str(app_port),
        "LOCALSTRIPE_PORT": str(stripe_port),
        "PUBLIC_URL": f"http://localhost:{app_port}",
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "DEMO_PASSWORD": DEMO_PASSWORD,
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "REFLEX_WEB_WORKDIR": os.environ.get("E2E_WEB_DIR", ".web-e2e"),
        "APP_HOST": "127.0.0.1",
    }
    if redis_reason() is None:
        # As production with several workers: page state in Redis, live updates through it (a
        # test serves the API from a second process).
        env["REDIS_URL"] = E2E_REDIS_URL
    log = open(data_dir / "app.log", "w")  # noqa: SIM115 -- open for the app's whole life, closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{app_port}"
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{app_port}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        process.poll()
    if process.returncode is not None or time.monotonic() >= deadline:
        os.killpg(process.pid, signal.SIGTERM)
        pytest.exit(f"The app did not start:\n{(data_dir / 'app.log').read_text()[-4000:]}", returncode=1)
    app = LiveApp(url, data_dir, env)
    yield app
    app.close()
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


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
