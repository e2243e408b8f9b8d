"""Administration in the browser: the Info page for everyone, Company information (logo in the
header, owner-only rename, field errors) and API keys that the metering API accepts until they
are deleted. Each test makes an account of its own, so the shared demo account is left as it is."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in

SIDEBAR = "nav[aria-label='Console']"


def _png(width: int = 4, height: int = 4) -> bytes:
    """A real, solid indigo PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x3e\x63\xdd" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _own_account(live_app: LiveApp, plan: str = "pro", *, api_keys: int = 0) -> dict[str, str]:
    """A new account with credits, an owner, an admin, a member and API keys; the users' emails."""
    tag = uuid.uuid4().hex[:10]
    emails = {role: f"{role}-{tag}@example.com" for role in ("owner", "admin", "member")}
    live_app.setup(
        "new_account",
        name=f"Admin Test {tag}",
        timezone="Asia/Tokyo",
        plan=plan,
        users=[(email, f"{role.title()} {tag}", role) for role, email in emails.items()],
        api_keys=api_keys,
        credits_cents=5_000,
    )
    return emails


def test_member_sees_only_info_with_limits_but_no_upgrade_link(page: Page, live_app: LiveApp):
    # Basic allows 3 seats: owner, admin and member use them all.
    emails = _own_account(live_app, "basic")
    sign_in(page, emails["member"])
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_role("link", name="Info")).to_be_visible()
    expect(sidebar.get_by_role("group", name="Administration")).to_have_count(0)
    expect(sidebar.get_by_role("group", name="Billing")).to_have_count(0)

    seats = page.locator("[data-limit='seats']")
    expect(seats).to_have_attribute("data-reached", "true")
    expect(seats).to_contain_text("3 of 3")
    expect(seats).to_contain_text("Account limit reached")
    expect(seats.get_by_role("link", name="Upgrade your plan")).to_have_count(0)
    expect(page.locator("[data-limit='api_keys']")).to_have_attribute("data-reached", "false")
    expect(page.locator("[data-add-on='Overage protection']")).to_have_attribute("data-status", "not_included")
    expect(page.locator("[data-add-on='Overage protection']")).to_contain_text("Not in your plan")
    expect(page.locator("[data-add-on='Usage credits']")).to_have_attribute("data-status", "included")

    for path in ("/company", "/api-keys"):
        page.goto(path)
        expect(page.locator("#no-access")).to_be_visible()
        expect(page.get_by_text("Default timezone")).to_have_count(0)


def test_owner_sees_the_upgrade_link_on_a_reached_limit_and_its_add_on_in_yellow(page: Page, live_app: LiveApp):
    # Basic allows 2 API keys.
    emails = _own_account(live_app, "basic", api_keys=2)
    sign_in(page, emails["owner"])
    keys = page.locator("[data-limit='api_keys']")
    expect(keys).to_contain_text("2 of 2")
    expect(keys.get_by_role("link", name="Upgrade your plan")).to_have_attribute("href", "/plans")
    expect(page.locator("[data-add-on='Metering API']")).to_have_attribute("data-status", "limit_reached")
    expect(page.locator("[data-add-on='Metering API']")).to_contain_text("Limit reached")
    expect(page.locator("#info-api-keys")).to_have_text("2")

    # The limit Info shows is the one "Add API Key" enforces, named next to the field.
    page.goto("/api-keys")
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_label("Name (optional)").fill("Third")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("dialog").locator("#key_name-error")).to_contain_text(
        "Account limit reached: your Basic plan includes 2 API keys."
    )


def test_owner_uploads_a_logo_that_shows_in_the_header(page: Page, live_app: LiveApp):
    emails = _own_account(live_app)
    sign_in(page, emails["owner"], next_path="/company")
    expect(page.get_by_role("heading", name="Company information")).to_be_visible()
    expect(page.locator("#header-logo")).to_have_count(0)
    upload = page.locator("#logo-upload input[type=file]")

    script = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    upload.set_input_files(files=[{"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": script}])
    expect(page.locator("#logo-error")).to_contain_text("scripts, event handlers or links")
    upload.set_input_files(files=[{"name": "logo.png", "mimeType": "image/png", "buffer": b"GIF89a not really a png"}])
    expect(page.locator("#logo-error")).to_contain_text("not a PNG, JPEG or SVG")
    expect(page.locator("#header-logo")).to_have_count(0)

    upload.set_input_files(files=[{"name": "logo.png", "mimeType": "image/png", "buffer": _png()}])
    logo = page.locator("#header-logo")
    expect(logo).to_be_visible()
    expect(logo).to_have_attribute("src", re.compile(r"^/api/account/logo\?v="))
    page.wait_for_function("document.querySelector('#header-logo').naturalWidth === 4")
    expect(page.locator("#logo-error")).to_have_count(0)

    # Still there after a reload, and on every page.
    page.goto("/")
    expect(page.locator("#header-logo")).to_be_visible()
    served = page.request.get(f"{live_app.url}{page.locator('#header-logo').get_attribute('src')}")
    assert served.status == 200 and served.headers["content-type"] == "image/png"

    page.goto("/company")
    page.get_by_role("button", name="Remove logo").click()
    expect(page.locator("#header-logo")).to_have_count(0)


def test_only_the_owner_renames_the_account_and_bad_fields_show_errors(page: Page, live_app: LiveApp):
    emails = _own_account(live_app)
    sign_in(page, emails["admin"], next_path="/company")
    expect(page.locator("#rename-note")).to_contain_text("Ask an owner")
    expect(page.get_by_label("Account name")).to_have_count(0)

    page.get_by_label("Domain").fill("https://example.com/home")
    page.get_by_label("Default timezone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.locator("#domain-error")).to_contain_text("no http://")
    page.get_by_label("Domain").fill("Example.COM")
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("status")).to_have_text("Company information saved.")
    expect(page.get_by_label("Domain")).to_have_value("example.com")
    page.reload()
    expect(page.get_by_label("Default timezone")).to_have_value("Europe/Paris")
    expect(page.get_by_label("Language")).to_have_value("de")

    page.context.clear_cookies()
    sign_in(page, emails["owner"], next_path="/company")
    name = page.get_by_label("Account name")
    expect(name).to_have_value(re.compile(r"^Admin Test "))
    name.fill("Renamed Co")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#header-account-name")).to_have_text("Renamed Co")


def test_owner_creates_an_api_key_the_api_accepts_sets_its_daily_budget_then_deletes_it(page: Page, live_app: LiveApp):
    emails = _own_account(live_app)
    sign_in(page, emails["owner"], next_path="/api-keys")
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()
    expect(page.locator("#api-keys-empty")).to_be_visible()

    page.get_by_role("button", name="Add API Key").click()
    page.get_by_label("Name (optional)").fill("Production backend")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("will not be shown again")
    full_key = page.locator("#new-api-key").inner_text()
    assert full_key.startswith("ld_") and len(full_key) > 30
    expect(dialog.get_by_role("button", name="Copy the key")).to_be_visible()
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_text(full_key)).to_have_count(0)

    row = page.locator("#api-keys-table tbody tr", has_text="Production backend")
    expect(row).to_contain_text(full_key[:10] + "…")
    expect(row).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} JST"))
    expect(row).to_contain_text("Owner ")
    expect(row).to_contain_text("Never")

    headers = {"Authorization": f"Bearer {full_key}"}
    accepted = page.request.post(
        f"{live_app.url}/api/v1/usage", data={"amount_cents": 125, "description": "Report run"}, headers=headers
    )
    assert accepted.status == 200, accepted.text()

    # The key's usage is in its row, and on Usage: the chart, the breakdown and the CSV.
    page.reload()
    expect(row.locator("td").nth(5)).to_have_text("$1.25")
    expect(row.locator("td").nth(6)).to_have_text("$1.25")
    page.goto("/billing/usage?range=7&by=description")
    expect(page.locator("#usage-chart .recharts-bar-rectangle").first).to_be_visible()
    expect(page.locator("#usage-breakdown-table tbody tr")).to_have_text(re.compile(r"Report run\s*1\s*\$1\.25"))
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename == "usage.csv"
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Day,API key,Description,Calls,Amount USD"
    assert lines[1].endswith(",Production backend,Report run,1,1.25")
    page.goto("/billing/usage?range=custom&from=2026-03-05&to=2026-03-01")
    expect(page.get_by_text("The first day must be on or before the last day.")).to_be_visible()
    expect(page.locator("#usage-chart")).to_have_count(0)
    page.goto("/api-keys")
    # A daily budget of its own: a bad amount is refused at the field, then the key's calls stop at it
    # (the $1.25 it used today counts).
    row.get_by_role("button", name="Set the daily budget of Production backend").click()
    budget = page.get_by_role("dialog")
    budget.get_by_label("Daily budget (USD, per UTC day)").fill("two dollars")
    budget.get_by_role("button", name="Save budget").click()
    expect(budget).to_contain_text("Enter an amount in dollars")
    budget.get_by_label("Daily budget (USD, per UTC day)").fill("2")
    budget.get_by_role("button", name="Save budget").click()
    expect(page.get_by_role("status")).to_contain_text("may use at most $2.00 a day (UTC)")
    expect(row).to_contain_text("$2.00 · $0.75 left today (UTC)")
    over = page.request.post(f"{live_app.url}/api/v1/usage", data={"amount_cents": 76}, headers=headers)
    assert over.status == 429 and over.json()["error"]["code"] == "key_budget_exceeded"
    assert int(over.headers["retry-after"]) > 0
    within = page.request.post(f"{live_app.url}/api/v1/usage", data={"amount_cents": 75}, headers=headers)
    assert within.status == 200, within.text()

    row.get_by_role("button", name=re.compile("Delete API Key")).click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_contain_text("Production backend")
    confirm.get_by_role("button", name="Delete API Key").click()
    expect(page.get_by_role("status")).to_contain_text("is deleted")
    expect(page.locator("#api-keys-table tbody tr", has_text="Production backend")).to_have_count(0)

    refused = page.request.post(f"{live_app.url}/api/v1/usage", data={"amount_cents": 1}, headers=headers)
    assert refused.status == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


def test_the_header_leads_to_administration_as_seed_002_says(page: Page, live_app: LiveApp):
    """Seed 002: clicking the account logo uploads a new one, the user menu's "Admin account" opens
    the administration pages, and Info links to the company details (seed 001); for those allowed."""
    emails = _own_account(live_app)
    sign_in(page, emails["owner"])
    page.get_by_role("link", name="Update company details").click()
    expect(page.get_by_role("heading", level=1, name="Company information")).to_be_visible()

    page.goto("/")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Change the account logo").click()
    chooser.value.set_files(files=[{"name": "logo.png", "mimeType": "image/png", "buffer": _png()}])
    expect(page.locator("#header-logo")).to_have_attribute("src", re.compile(r"^/api/account/logo\?v="))
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Change the account logo").click()
    chooser.value.set_files(files=[{"name": "logo.png", "mimeType": "image/png", "buffer": b"not an image"}])
    expect(page.locator("#header-logo-error")).to_contain_text("not a PNG, JPEG or SVG")

    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Admin account").click()
    expect(page.get_by_role("heading", level=1, name="Company information")).to_be_visible()

    page.context.clear_cookies()
    sign_in(page, emails["member"])
    expect(page.locator("#header-logo")).to_be_visible()
    expect(page.get_by_role("button", name="Change the account logo")).to_have_count(0)
    expect(page.get_by_role("link", name="Update company details")).to_have_count(0)
    page.locator("#user-menu").click()
    expect(page.get_by_role("menuitem", name="Your profile")).to_be_visible()
    expect(page.get_by_role("menuitem", name="Admin account")).to_have_count(0)
