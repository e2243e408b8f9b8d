"""The permission matrix in the browser: signed in as an owner, an admin, a member and a user of a
custom role, every console page of the sidebar registry shows its heading when the role holds the
page's permission and "No access" when it does not, and the sidebar lists exactly the pages the
role may open. Users of an account made for this test; the demo users are left alone."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveApp, sign_in

CUSTOM_ROLE = "Billing viewer"
CUSTOM_PERMISSIONS = ["billing.view"]
ROLES = ("owner", "admin", "member", CUSTOM_ROLE)


@pytest.fixture(scope="module")
def matrix(live_app: LiveApp) -> dict:
    """The console pages as registered (route, sidebar label, section, permission, title) and
    one user per role in a new account, with their role's permissions as stored."""
    tag = uuid.uuid4().hex[:8]
    return live_app.setup("permission_matrix", tag=tag, custom_role=CUSTOM_ROLE, custom_permissions=CUSTOM_PERMISSIONS)


def test_the_custom_role_holds_only_what_it_was_given_and_info(matrix):
    assert matrix["users"][CUSTOM_ROLE]["permissions"] == sorted(["info.view", *CUSTOM_PERMISSIONS])
    assert len(matrix["pages"]) >= 11 and len({p["route"] for p in matrix["pages"]}) == len(matrix["pages"])


@pytest.mark.parametrize("role", ROLES)
def test_each_page_opens_or_says_no_access_as_the_role_allows(page: Page, matrix, role):
    user = matrix["users"][role]
    allowed = set(user["permissions"])
    sign_in(page, user["email"])

    # The sidebar: entries without a section first, then each section, each by order.
    sections = [None, *matrix["sections"]]
    visible = sorted(
        (p for p in matrix["pages"] if p["permission"] in allowed),
        key=lambda p: (sections.index(p["section"]), p["order"]),
    )
    expect(page.locator("nav.ld-sidebar .ld-nav-link")).to_have_text([p["label"] for p in visible])

    for entry in matrix["pages"]:
        page.goto(entry["route"])
        expect(page.locator("#header-account-name")).to_be_visible()
        heading = page.get_by_role("heading", level=1, name=entry["title"], exact=True)
        no_access = page.locator("#no-access")
        if entry["permission"] in allowed:
            expect(heading, f"{role} should see {entry['route']}").to_be_visible()
            expect(no_access, f"{role} should see {entry['route']}").to_have_count(0)
        else:
            expect(no_access, f"{role} should get No access on {entry['route']}").to_be_visible()
            expect(no_access.get_by_role("heading", name="No access")).to_be_visible()
            expect(heading, f"{role} should not see {entry['route']}").to_have_count(0)


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_the_operator_back_office_or_api(page: Page, matrix, role, live_app: LiveApp):
    """Every role, the Owner too, is sent to the operator sign-in from /operator, and the
    operator API answers its session 401."""
    sign_in(page, matrix["users"][role]["email"])
    for path in ("/operator", "/operator/api-keys", "/operator/account"):
        page.goto(path)
        expect(page.get_by_role("heading", name="Operator sign-in")).to_be_visible()
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "ld_session")
    answer = page.request.get(f"{live_app.url}/api/operator/v1/accounts", headers={"Cookie": f"ld_session={cookie}"})
    assert answer.status == 401
