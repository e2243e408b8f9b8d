"""The permission matrix in the browser: signed in as an owner, an admin, a member and a user of a
custom role, every console page of the sidebar registry shows its heading when the role holds the
page's permission and "No access" when it does not, and the sidebar lists exactly the pages the
role may open. Users of an account made for this test; the demo users are left alone."""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, LiveApp, sign_in

CUSTOM_ROLE = "Billing viewer"
CUSTOM_PERMISSIONS = ["billing.view"]
ROLES = ("owner", "admin", "member", CUSTOM_ROLE)


@pytest.fixture(scope="module")
def matrix(live_app: LiveApp) -> dict:
    """The console pages as registered (route, sidebar label, section, permission, title) and
    one user per role in a new account, with their role's permissions as stored."""
    tag = uuid.uuid4().hex[:8]
    output = live_app.run_python(
        f"""
import json
import app.pages
from reflex_base.registry import RegistrationContext
from app.components.layout import NAV, SECTIONS
from app.db import transaction
from app.models import Role
from app.services import roles
from app.services.accounts import builtin_role, create_account, create_user
from app.services.permissions import BUILTIN_ROLES, Actor, parse_permissions

titles = {{o["route"]: o["title"].removesuffix(" · Ledgerdesk") for _, o in RegistrationContext.ensure_context().decorated_pages}}
pages = [
    {{"route": e.route, "label": e.label, "section": e.section, "order": e.order,
      "permission": e.permission.value, "title": titles[e.route]}}
    for e in NAV
]
users = {{}}
with transaction() as session:
    account = create_account(session, name="Matrix {tag}")
    account.plan_code = "business"
    for key in ("owner", "admin", "member"):
        user = create_user(session, account=account, email=f"{{key}}-{tag}@matrix.example.com",
                           full_name=key.title() + " {tag}", role=builtin_role(session, key), password={DEMO_PASSWORD!r})
        users[key] = user
    owner = users["owner"]
    actor = Actor(owner.id, account.id, owner.email, owner.full_name, "owner", "Owner", BUILTIN_ROLES["owner"][1])
    custom = roles.create_role(session, actor, name={CUSTOM_ROLE!r}, permissions={CUSTOM_PERMISSIONS!r})
    users[{CUSTOM_ROLE!r}] = create_user(session, account=account, email="custom-{tag}@matrix.example.com",
                                       full_name="Custom {tag}", role=custom, password={DEMO_PASSWORD!r})
    result = {{
        "sections": list(SECTIONS),
        "pages": pages,
        "users": {{
            role: {{"email": user.email, "permissions": sorted(parse_permissions(session.get(Role, user.role_id).permissions))}}
            for role, user in users.items()
        }},
    }}
print(json.dumps(result))
"""
    )
    return json.loads(output.splitlines()[-1])


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
