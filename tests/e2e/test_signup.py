"""Sign-up and people in several accounts, in the browser: a new company signs up, opens the
emailed link, lands on the Overview's getting-started list and ticks off "Create an API key"; a
person invited into a second account joins it while signed in (no password again), switches
between the two and sees each one's data only, and a switch signs out none of the browser's other
tabs."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in

NEW_PASSWORD = "tall-ships-sail-2026"


def _step(page: Page, key: str):
    return page.locator(f"#getting-started [data-step='{key}']")


def test_a_new_company_signs_up_opens_the_link_and_ticks_off_its_first_api_key(page: Page, live_app: LiveApp):
    email = f"founder-{uuid.uuid4().hex[:10]}@startup.example"
    page.goto("/sign-in")
    page.get_by_role("link", name="New here? Create an account").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Company name").fill("Startup Ltd")
    page.get_by_label("Your full name").fill("Fay Founder")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()

    link = live_app.setup("link_in_last_email", to=email, path="/verify-email?token=")
    page.goto(link)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator("#header-account-name")).to_have_text("Startup Ltd")
    expect(page.locator("#header-role")).to_have_text("Owner")
    for key in ("payment_method", "credits", "api_key", "teammate"):
        expect(_step(page, key)).to_have_attribute("data-done", "false")
    browser_timezone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert live_app.setup("newest_account_of", email=email) == {
        "name": "Startup Ltd",
        "plan": "basic",
        "timezone": browser_timezone,
    }

    _step(page, "api_key").get_by_role("link", name="Create an API key").click()
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()
    page.get_by_role("button", name="Add API Key").click()
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("dialog").get_by_role("button", name="Done").click()

    page.goto("/billing")
    expect(_step(page, "api_key")).to_have_attribute("data-done", "true")
    expect(_step(page, "api_key")).to_contain_text("Done")
    expect(_step(page, "teammate")).to_have_attribute("data-done", "false")

    # The link worked once.
    page.goto(link)
    expect(page.get_by_role("heading", name="Link not valid")).to_be_visible()


def test_a_person_in_two_accounts_switches_and_sees_each_ones_data_only(page: Page, live_app: LiveApp):
    tag = uuid.uuid4().hex[:8]
    ann, alpha_mate = f"ann-{tag}@alpha.example", f"mate-{tag}@alpha.example"
    bob, beta_mate = f"bob-{tag}@beta.example", f"mate-{tag}@beta.example"
    live_app.setup(
        "new_account", name=f"Alpha {tag}", plan="pro", users=[(ann, "Ann", "owner"), (alpha_mate, "Al", "member")]
    )
    live_app.setup(
        "new_account", name=f"Beta {tag}", plan="pro", users=[(bob, "Bob", "owner"), (beta_mate, "Bea", "member")]
    )
    link = live_app.setup(
        "invite_into_account_of", owner_email=bob, email=ann, full_name="Ann", role="admin", base_url=live_app.url
    )
    link = link[link.index("http") :]

    # Signed in as Ann already (in Alpha), the link joins with one click.
    sign_in(page, ann)
    expect(page.locator("#header-account-name")).to_have_text(f"Alpha {tag}")
    page.goto(link)
    expect(page.get_by_role("heading", name=f"Join Beta {tag}")).to_be_visible()
    expect(page.get_by_text("You are signed in as")).to_be_visible()
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.locator("#header-account-name")).to_have_text(f"Beta {tag}")
    expect(page.locator("#header-role")).to_have_text("Admin")

    page.goto("/team")
    table = page.locator("#team-table")
    expect(table).to_contain_text(beta_mate)
    expect(table).not_to_contain_text(alpha_mate)

    # A second tab on Beta's Team page; switching in the first signs it out not.
    other_tab = page.context.new_page()
    other_tab.goto("/team")
    expect(other_tab.locator("#team-table")).to_contain_text(beta_mate)

    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name=f"Alpha {tag}").click()
    expect(page.locator("#header-account-name")).to_have_text(f"Alpha {tag}")
    expect(page.locator("#header-role")).to_have_text("Owner")
    other_tab.locator("nav[aria-label='Console']").get_by_role("link", name="Info").click()
    expect(other_tab.get_by_role("heading", name="Info", level=1)).to_be_visible()
    expect(other_tab.locator("#header-account-name")).to_have_text(f"Beta {tag}")
    other_tab.close()
    page.goto("/team")
    expect(table).to_contain_text(alpha_mate)
    expect(table).not_to_contain_text(beta_mate)
    expect(table).not_to_contain_text(bob)

    # The next sign-in lands in the account used last.
    page.locator("#user-menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    sign_in(page, ann)
    expect(page.locator("#header-account-name")).to_have_text(f"Alpha {tag}")
