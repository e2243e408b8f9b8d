"""The audit log: a change writes one entry with who and what, in the change's transaction (a
refused change writes none); owners read it filtered by category, user and days, in pages;
admins and members cannot; one account never sees another's entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from app.errors import PermissionDenied, ValidationFailed
from app.models import Account, AuditEvent
from app.services import api_keys, audit, company, roles, team
from tests.factories import actor_for, make_account, make_user, signed_in_actor
from tests.integration.test_company import PNG


@pytest.fixture
def owner_email() -> str:
    return "olivia@example.com"


def _entries(session, account_id: int) -> list[tuple[str, str, str]]:
    rows = session.exec(select(AuditEvent).where(AuditEvent.account_id == account_id).order_by(AuditEvent.id))
    return [(row.actor_email, row.action, row.summary) for row in rows]


def test_each_change_writes_one_entry_with_who_and_what(session, owner):
    actor = owner.actor
    key, full_key = api_keys.create_key(session, actor, "Production")
    api_keys.delete_key(session, actor, key.public_id)
    role = roles.create_role(session, actor, name="Support", permissions=["info.view", "billing.view"])
    team.invite(session, actor, email="sam@example.com", full_name="Sam Support", role_id=role.id, base_url="http://x")
    company.rename_account(session, actor, "Acme Europe")
    company.save_logo(session, actor, PNG)
    company.remove_logo(session, actor)
    session.commit()

    entries = _entries(session, actor.account_id)
    assert [action for _, action, _ in entries] == [
        "api_key.create",
        "api_key.delete",
        "role.create",
        "team.invite",
        "company.rename",
        "company.logo",
        "company.logo",
    ]
    assert [row.summary for row in audit.events(session, actor).rows[:2]] == [
        "Removed the account logo",
        "Uploaded a new account logo",
    ]
    assert {email for email, _, _ in entries} == {"olivia@example.com"}
    assert entries[0][2] == f"Created API key “Production” ({key.prefix}…)"
    assert entries[3][2] == "Invited sam@example.com (Sam Support) as Support"
    assert entries[4][2] == "Renamed the account to “Acme Europe”"
    assert all(full_key not in summary for _, _, summary in entries), "a secret reached the audit log"


def test_money_is_shown_with_its_currency(session, owner):
    audit.record(session, owner.actor, "payment.credits", "Bought $1,025.00 of usage credits; refunded -$5.50")
    audit.record(session, owner.actor, "payment.credits", "Charged $25.00 USD")
    session.commit()
    assert [row.summary for row in audit.events(session, owner.actor).rows] == [
        "Charged $25.00 USD",
        "Bought $1,025.00 USD of usage credits; refunded -$5.50 USD",
    ]


def test_a_refused_change_writes_nothing(session, owner):
    actor = owner.actor
    with pytest.raises(ValidationFailed):
        company.rename_account(session, actor, "   ")
    member = actor_for(make_user(session, session.get(Account, actor.account_id), "mo@example.com", "member"), "member")
    with pytest.raises(PermissionDenied):
        api_keys.create_key(session, member, "Sneaky")
    session.rollback()
    assert _entries(session, actor.account_id) == []


def test_owners_filter_by_category_user_and_day_and_page_through(session, owner):
    actor = owner.actor
    account = session.get(Account, actor.account_id)
    account.timezone = "Europe/Berlin"
    session.add(account)
    admin = actor_for(make_user(session, account, "adam@example.com", "admin"), "admin")
    # 23:30 UTC on Nov 20 is already Nov 21 in Berlin.
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    for number in range(30):
        audit.record(session, actor, "team.invite", f"Invited user{number}@example.com", now=late - timedelta(days=2))
    audit.record(session, admin, "api_key.create", "Created API key “CI”", now=late)
    session.commit()

    first = audit.events(session, actor)
    assert len(first.rows) == 25 and first.next_before_id is not None
    assert first.rows[0].summary == "Created API key “CI”" and first.rows[0].who == "Adam (adam@example.com)"
    assert first.rows[0].when == "2026-11-21 00:30 CET"
    second = audit.events(session, actor, before_id=first.next_before_id)
    assert len(second.rows) == 6 and second.next_before_id is None
    assert second.rows[-1].summary == "Invited user0@example.com"

    assert [r.category for r in audit.events(session, actor, category="api_key").rows] == ["API keys"]
    assert len(audit.events(session, actor, user_email="olivia@example.com", limit=100).rows) == 30
    on_the_21st = audit.events(session, actor, day_from="2026-11-21", day_to="2026-11-21")
    assert [r.summary for r in on_the_21st.rows] == ["Created API key “CI”"]
    assert audit.events(session, actor, day_from="2026-11-22").rows == []
    assert dict(audit.people(session, actor)) == {"adam@example.com": "Adam", "olivia@example.com": "Olivia"}

    with pytest.raises(ValidationFailed) as refused:
        audit.events(session, actor, day_from="2026-11-22", day_to="2026-11-21")
    assert refused.value.field == "day_to"
    with pytest.raises(ValidationFailed):
        audit.events(session, actor, category="secrets")


def test_only_owners_read_the_log(session, owner):
    actor = owner.actor
    account = session.get(Account, actor.account_id)
    for role_key in ("admin", "member"):
        other = actor_for(make_user(session, account, f"{role_key}@example.com", role_key), role_key)
        with pytest.raises(PermissionDenied):
            audit.events(session, other)
    custom = roles.create_role(session, actor, name="Auditor", permissions=["info.view", "audit.view"])
    auditor_user = make_user(session, account, "aud@example.com", "member")
    auditor_user.role_id = custom.id
    session.commit()
    # A custom role that holds audit.view reads it too.
    auditor = signed_in_actor(session, "aud@example.com")
    assert [r.summary for r in audit.events(session, auditor).rows] == [
        "Created the role “Auditor” (audit.view,info.view)"
    ]


def test_one_account_never_sees_anothers_entries(session, owner):
    actor = owner.actor
    other_account = make_account(session, "Other Co")
    other_owner = actor_for(make_user(session, other_account, "otto@example.com", "owner"), "owner")
    api_keys.create_key(session, actor, "Mine")
    api_keys.create_key(session, other_owner, "Theirs")
    session.commit()
    [mine] = audit.events(session, actor).rows
    [theirs] = audit.events(session, other_owner).rows
    assert "“Mine”" in mine.summary and "“Theirs”" in theirs.summary
    assert audit.events(session, actor, user_email="otto@example.com").rows == []
