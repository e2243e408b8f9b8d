"""The operator API over HTTP (create_api() on the test database): an operator key opens an
account whose Owner accepts the invitation and signs in, lists and reads accounts, grants credits
once per Idempotency-Key, sets the plan, suspends (the account's metering calls then get 403) and
reactivates; customers' keys and sessions reach none of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.api import create_api
from app.api import metering as metering_api
from app.api import operator as operator_api
from app.models import AuditEvent, CreditGrant, LedgerEntry
from app.services import api_keys, auth, ledger
from app.services.operator import keys, staff
from tests.factories import grant, owner_and_account, signed_in_token

PREFIX = operator_api.PREFIX


@pytest.fixture
def api(engine) -> TestClient:
    app = create_api()
    app.dependency_overrides[operator_api.operator_engine] = lambda: engine
    app.dependency_overrides[metering_api.metering_engine] = lambda: engine
    with TestClient(app) as client:
        yield client


@pytest.fixture
def operator_key(session) -> dict[str, str]:
    user, _ = staff.create_operator(session, "ops@ledgerdesk.example", base_url="http://c")
    operator = staff.Operator(operator_id=user.id, email=user.email, full_name="")
    _, full_key = keys.create_key(session, operator, "CRM")
    session.commit()
    return {"Authorization": f"Bearer {full_key}"}


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["code"] == code


def test_an_opened_accounts_owner_accepts_the_invitation_and_signs_in(api, session, operator_key):
    response = api.post(
        f"{PREFIX}/accounts",
        json={"name": "Initech", "owner_email": "Peter@Initech.example", "plan": "pro"},
        headers=operator_key,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["account"]["name"] == "Initech" and body["account"]["plan"] == "pro"
    assert body["account"]["status"] == "active" and body["account"]["balance_cents"] == 0
    token = body["invitation_url"].split("token=", 1)[1]
    auth.accept_invitation(session, token, "a-chosen-passphrase")
    session.commit()
    actor = auth.actor_for_session_token(
        session, signed_in_token(session, "peter@initech.example", "a-chosen-passphrase")
    )
    assert actor is not None and actor.role_key == "owner"
    session.commit()
    assert api.get(f"{PREFIX}/accounts/{body['account']['id']}", headers=operator_key).json() == body["account"]
    # One person may own several accounts: a second account invites the same person, who joins
    # it by signing in with the password they have.
    again = api.post(
        f"{PREFIX}/accounts", json={"name": "Again", "owner_email": "peter@initech.example"}, headers=operator_key
    )
    assert again.status_code == 201, again.text
    assert auth.invitation(session, again.json()["invitation_url"].split("token=", 1)[1]).existing


def test_a_grant_with_one_idempotency_key_credits_once(api, session, operator_key):
    _, account = owner_and_account(session)
    url = f"{PREFIX}/accounts/{account.public_id}/credits"
    body = {"amount_cents": 1_000, "reason": "Welcome offer"}

    first = api.post(url, json=body, headers={**operator_key, "Idempotency-Key": "crm-42"})
    again = api.post(url, json=body, headers={**operator_key, "Idempotency-Key": "crm-42"})

    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json() and first.json()["balance_cents"] == 1_000
    assert_error(
        api.post(url, json={**body, "amount_cents": 5}, headers={**operator_key, "Idempotency-Key": "crm-42"}),
        409,
        "conflict",
    )
    assert_error(api.post(url, json=body, headers=operator_key), 422, "validation_error")
    assert_error(
        api.post(url, json={**body, "reason": " "}, headers={**operator_key, "Idempotency-Key": "crm-43"}),
        422,
        "validation_error",
    )
    with Session(session.get_bind()) as fresh:
        assert ledger.balance_of(fresh, account.id) == 1_000 == ledger.ledger_sum(fresh, account.id)
        [event] = fresh.exec(select(AuditEvent).where(AuditEvent.account_id == account.id)).all()
        assert event.actor_name == "Operator API key “CRM”"
        assert event.summary == "Granted $10.00 of usage credits. Reason: Welcome offer"


def test_a_grant_may_expire_and_have_a_priority_and_a_past_expiry_changes_nothing(api, session, operator_key):
    _, account = owner_and_account(session)
    session.commit()
    url = f"{PREFIX}/accounts/{account.public_id}/credits"
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = {"amount_cents": 2_500, "reason": "Winter promotion", "priority": 7}

    granted = api.post(
        url, json={**body, "expires_at": expires.isoformat()}, headers={**operator_key, "Idempotency-Key": "p-1"}
    )

    assert granted.status_code == 200, granted.text
    assert granted.json()["priority"] == 7
    assert datetime.fromisoformat(granted.json()["expires_at"]) == expires
    for refused in (
        {**body, "expires_at": "2020-01-01T00:00:00Z"},
        {**body, "priority": 101},
        {**body, "amount_cents": -100},
    ):
        assert_error(
            api.post(url, json=refused, headers={**operator_key, "Idempotency-Key": "p-2"}), 422, "validation_error"
        )
    with Session(session.get_bind()) as fresh:
        assert ledger.balance_of(fresh, account.id) == 2_500
        [grant_row] = fresh.exec(select(CreditGrant)).all()
        assert (grant_row.amount_cents, grant_row.priority, grant_row.expires_at) == (2_500, 7, expires)


def test_suspend_refuses_the_accounts_metering_calls_until_reactivated(api, session, operator_key):
    actor, account = owner_and_account(session)
    grant(session, account.id, 1_000)
    _, customer_key = api_keys.create_key(session, actor, "Prod")
    session.commit()
    usage = {"Authorization": f"Bearer {customer_key}"}

    suspended = api.post(
        f"{PREFIX}/accounts/{account.public_id}/suspend", json={"reason": "Fraud"}, headers=operator_key
    )
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert_error(api.post("/api/v1/usage", json={"amount_cents": 5}, headers=usage), 403, "account_suspended")
    listed = api.get(f"{PREFIX}/accounts", params={"suspended": "true"}, headers=operator_key).json()
    assert [a["id"] for a in listed["data"]] == [account.public_id] and listed["next_before"] is None

    api.post(f"{PREFIX}/accounts/{account.public_id}/reactivate", json={"reason": "Cleared"}, headers=operator_key)
    assert api.post("/api/v1/usage", json={"amount_cents": 5}, headers=usage).json()["balance_cents"] == 995


def test_set_plan_and_list_pages(api, session, operator_key):
    ids = []
    for number in range(3):
        _, account = owner_and_account(session, email=f"o{number}@example.com")
        ids.append(account.public_id)
    changed = api.put(
        f"{PREFIX}/accounts/{ids[0]}/plan",
        json={"plan": "business", "custom_pricing": True, "reason": "Deal"},
        headers=operator_key,
    )
    assert changed.json()["plan"] == "business"
    assert_error(
        api.put(f"{PREFIX}/accounts/{ids[0]}/plan", json={"plan": "gold", "reason": "x"}, headers=operator_key),
        422,
        "validation_error",
    )
    first = api.get(f"{PREFIX}/accounts", params={"limit": 2}, headers=operator_key).json()
    second = api.get(
        f"{PREFIX}/accounts", params={"limit": 2, "before": first["next_before"]}, headers=operator_key
    ).json()
    assert [a["id"] for a in first["data"] + second["data"]] == ids[::-1] and second["next_before"] is None
    assert_error(api.get(f"{PREFIX}/accounts/acct_NOPE", headers=operator_key), 404, "not_found")


def test_customer_keys_and_sessions_reach_no_operator_route(api, session, operator_key):
    actor, account = owner_and_account(session)
    grant(session, account.id, 1_000)
    _, customer_key = api_keys.create_key(session, actor, "Prod")
    token = signed_in_token(session, "owner@example.com")
    session.commit()
    calls = [
        ("GET", f"{PREFIX}/accounts", None),
        ("GET", f"{PREFIX}/accounts/{account.public_id}", None),
        ("POST", f"{PREFIX}/accounts/{account.public_id}/credits", {"amount_cents": 100, "reason": "me"}),
        ("PUT", f"{PREFIX}/accounts/{account.public_id}/plan", {"plan": "custom", "reason": "me"}),
        ("POST", f"{PREFIX}/accounts/{account.public_id}/reactivate", {"reason": "me"}),
        ("POST", f"{PREFIX}/accounts", {"name": "Mine", "owner_email": "me@example.com"}),
    ]
    for headers in ({"Authorization": f"Bearer {customer_key}"}, {"Cookie": f"{auth.SESSION_COOKIE}={token}"}):
        for method, url, body in calls:
            response = api.request(method, url, json=body, headers={**headers, "Idempotency-Key": "mine"})
            assert_error(response, 401, "invalid_api_key")
    with Session(session.get_bind()) as fresh:
        assert [e.amount_cents for e in fresh.exec(select(LedgerEntry))] == [1_000]
        assert [e.action for e in fresh.exec(select(AuditEvent))] == ["api_key.create"]
