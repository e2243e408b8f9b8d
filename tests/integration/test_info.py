"""The Info page: account contents, add-on colours and plan limits with their usage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import ValidationFailed
from app.services import api_keys, audit, company, ledger, profile, spend
from app.services.info import INCLUDED, LIMIT_REACHED, NOT_INCLUDED, account_info, user_names
from app.services.plans import ADD_ONS, LIMITS, get_plan
from app.services.team import seat_limit
from tests.factories import actor_for, grant, make_account, make_user
from tests.integration.test_company import PNG

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _account(session, plan_code="basic"):
    account = make_account(session)
    account.plan_code = plan_code
    session.add(account)
    owner = make_user(session, account, f"owner@{plan_code}.test")
    return account, actor_for(owner, "owner")


def _limit(info, key):
    return next(limit for limit in info.limits if limit.key == key)


def _add_on(info, name):
    return next(add_on.status for add_on in info.add_ons if add_on.name == name)


def _use(session, account, cents, key, at):
    ledger.debit(session, account_id=account.id, amount_cents=cents, source="usage", idempotency_key=key, now=at)


def test_every_plan_limit_is_listed_with_its_usage(session):
    account, owner = _account(session)
    info = account_info(session, owner, now=NOW)
    assert [limit.key for limit in info.limits] == [limit.key for limit in LIMITS]
    seats = _limit(info, "seats")
    assert (seats.used, seats.limit, seats.used_text, seats.limit_text, seats.reached) == (1, 3, "1", "3", False)
    assert _limit(info, "monthly_credits_cents").limit_text == "$500.00"
    assert _limit(info, "storage_bytes").limit_text == "5 MB"
    assert not info.any_limit_reached
    assert (info.plan_name, info.active_users, info.invited_users, info.api_keys) == ("Basic", 1, 0, 0)


def test_seats_count_active_and_invited_users_and_turn_red_at_the_limit(session):
    account, owner = _account(session)
    make_user(session, account, "a@basic.test", "member")
    make_user(session, account, "blocked@basic.test", "member", status="blocked")
    assert not _limit(account_info(session, owner, now=NOW), "seats").reached
    make_user(session, account, "invited@basic.test", "member", password=None, status="invited")
    info = account_info(session, owner, now=NOW)
    seats = _limit(info, "seats")
    assert (seats.used, seats.reached) == (3, True)
    assert info.any_limit_reached
    assert (info.active_users, info.invited_users) == (2, 1)


def test_api_keys_count_until_deleted_and_the_metering_api_turns_yellow(session):
    account, owner = _account(session)
    api_keys.create_key(session, owner, "one")
    info = account_info(session, owner, now=NOW)
    assert _add_on(info, "Metering API") == INCLUDED
    second, _ = api_keys.create_key(session, owner, "two")
    info = account_info(session, owner, now=NOW)
    assert _limit(info, "api_keys").reached and info.api_keys == 2
    assert _add_on(info, "Metering API") == LIMIT_REACHED
    api_keys.delete_key(session, owner, second.public_id)
    info = account_info(session, owner, now=NOW)
    assert _limit(info, "api_keys").used == 1 and _add_on(info, "Metering API") == INCLUDED


def _bought(session, account, cents, source, key, at):
    ledger.credit(
        session, account_id=account.id, amount_cents=cents, source=source, description="", idempotency_key=key, now=at
    )


def test_monthly_credits_are_the_credits_bought_this_calendar_month(session):
    """Top-ups and auto recharges of this calendar month (UTC); grants and usage do not count."""
    account, owner = _account(session)
    grant(session, account.id, 100_000, description="Welcome credits", key="g", now=NOW)
    _bought(session, account, 7_000, "purchase", "last-month", datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    _bought(session, account, 1_500, "purchase", "first-minute", datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    _bought(session, account, 2_500, "auto_recharge", "recharge", NOW)
    _use(session, account, 900, "today", NOW)
    info = account_info(session, owner, now=NOW)
    credits = _limit(info, "monthly_credits_cents")
    assert (credits.used, credits.used_text, credits.reached) == (4_000, "$40.00", False)
    assert _limit(info, "daily_requests").used == 1
    assert _add_on(info, "Usage credits") == INCLUDED

    _bought(session, account, 46_000, "purchase", "big", NOW)
    info = account_info(session, owner, now=NOW)
    assert _limit(info, "monthly_credits_cents").reached
    assert _add_on(info, "Usage credits") == LIMIT_REACHED
    # A new month starts from zero.
    next_month = account_info(session, owner, now=datetime(2026, 4, 1, 0, 1, tzinfo=UTC))
    assert _limit(next_month, "monthly_credits_cents").used == 0


def test_storage_is_the_size_of_uploaded_files(session):
    account, owner = _account(session)
    assert _limit(account_info(session, owner, now=NOW), "storage_bytes").used == 0
    company.save_logo(session, owner, PNG)
    storage = _limit(account_info(session, owner, now=NOW), "storage_bytes")
    assert (storage.used, storage.used_text) == (len(PNG), f"{len(PNG)} B")


def test_profile_pictures_count_towards_storage_and_uploads_past_it_are_refused(session):
    """Basic includes 5 MB: a 1 MB logo and four 1 MB pictures fill it; a fifth picture is refused
    at its field with the limit named, and replacing a file counts only the difference."""
    account, owner = _account(session)
    megabyte = PNG + b"\x00" * (company.LOGO_MAX_BYTES - len(PNG))
    company.save_logo(session, owner, megabyte)
    people = [actor_for(make_user(session, account, f"u{n}@basic.test", "member"), "member") for n in range(5)]
    for person in people[:4]:
        profile.save_picture(session, person, megabyte)
    storage = _limit(account_info(session, owner, now=NOW), "storage_bytes")
    assert (storage.used_text, storage.limit_text, storage.reached) == ("5 MB", "5 MB", True)
    with pytest.raises(ValidationFailed) as refused:
        profile.save_picture(session, people[4], PNG)
    assert refused.value.field == "picture"
    assert refused.value.message.startswith(
        "Account limit reached: your Basic plan includes 5 MB of file storage and 5 MB is in use"
    )
    company.save_logo(session, owner, megabyte)  # a replacement of the same size fits
    company.remove_logo(session, owner)
    profile.save_picture(session, people[4], PNG)
    with pytest.raises(ValidationFailed, match="Account limit reached") as logo_refused:
        company.save_logo(session, owner, megabyte)
    assert logo_refused.value.field == "logo"
    profile.save_picture(session, people[0], PNG)  # smaller than the picture it replaces
    company.save_logo(session, owner, megabyte)


def test_the_seat_limit_is_the_one_the_team_page_enforces(session):
    for code in ("basic", "pro", "business"):
        _, owner = _account(session, code)
        assert _limit(account_info(session, owner, now=NOW), "seats").limit == seat_limit(get_plan(code))
    assert seat_limit(get_plan("pro")) == get_plan("pro").limit("seats") == 5


def test_add_ons_outside_the_plan_are_not_included(session):
    basic, basic_owner = _account(session, "basic")
    statuses = {add_on.name: add_on.status for add_on in account_info(session, basic_owner, now=NOW).add_ons}
    assert [name for name in statuses] == [add_on.name for add_on in ADD_ONS]
    assert statuses["Overage protection"] == statuses["Invoice billing"] == NOT_INCLUDED
    assert statuses["Usage credits"] == statuses["Metering API"] == INCLUDED

    _, business_owner = _account(session, "business")
    business = {a.name: a.status for a in account_info(session, business_owner, now=NOW).add_ons}
    assert business["Audit log"] == business["Spend management"] == INCLUDED
    assert business["Invoice billing"] == NOT_INCLUDED


@pytest.mark.parametrize("code", ["basic", "pro", "business", "custom"])
def test_info_says_included_exactly_for_what_the_console_lets_the_plan_use(session, code):
    """The audit log and spend management work on every plan, so Info never says "Not in your
    plan" for them; overage protection is included where the plan gives a line above zero."""
    _, owner = _account(session, code)
    statuses = {add_on.name: add_on.status for add_on in account_info(session, owner, now=NOW).add_ons}
    audit.events(session, owner)
    spend.save_settings(session, owner, enabled=True, daily_budget="10", notify_threshold="", webhook_url="")
    assert statuses["Audit log"] == statuses["Spend management"] == INCLUDED
    line = get_plan(code).overage_credit_line_cents
    assert statuses["Overage protection"] == (INCLUDED if line > 0 else NOT_INCLUDED)
    assert statuses["Invoice billing"] == (INCLUDED if get_plan(code).invoice_priced else NOT_INCLUDED)


def test_custom_plans_have_no_limits(session):
    account, owner = _account(session, "custom")
    for index in range(5):
        make_user(session, account, f"user{index}@custom.test", "member")
    info = account_info(session, owner, now=NOW)
    assert all(limit.limit is None and limit.limit_text == "Unlimited" and not limit.reached for limit in info.limits)
    assert get_plan("custom").limits == {}


@pytest.mark.parametrize(("role", "can_upgrade"), [("owner", True), ("admin", True), ("member", False)])
def test_everyone_sees_info_and_only_plan_managers_get_the_upgrade_link(session, role, can_upgrade):
    account, _ = _account(session)
    user = make_user(session, account, f"{role}-x@basic.test", role)
    info = account_info(session, actor_for(user, role), now=NOW)
    assert info.plan_name == "Basic" and info.can_upgrade is can_upgrade


def test_user_names_are_scoped_to_the_account(session):
    _, owner = _account(session, "basic")
    _, other_owner = _account(session, "pro")
    assert user_names(session, owner, {owner.user_id, other_owner.user_id}) == {owner.user_id: "Owner"}
