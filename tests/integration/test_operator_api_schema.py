"""The operator API against its own OpenAPI document, as test_api_schema.py holds the metering
API to its: schemathesis generates valid and invalid calls from /api/operator/v1/openapi.json
with a real operator key, and none is answered with a 5xx or with anything the document does not
promise; money still adds up after every call."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlmodel import Session, select

from app.api import create_api
from app.api import operator as operator_api
from app.models import Account, utcnow
from app.services import ledger
from app.services.operator import keys, staff
from tests.factories import grant, owner_and_account

API = create_api()
schema = schemathesis.openapi.from_asgi(operator_api.OPENAPI_URL, API)
OPERATOR_KEY: list[str] = []


@schema.auth(refresh_interval=None)
class OperatorKey:
    def get(self, case, context) -> str:
        return OPERATOR_KEY[-1] if OPERATOR_KEY else "ldop_not_yet_made_xxxxxxxxxxxx"

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.hook
def map_body(context, body):
    """What the document cannot say: a grant's `expires_at` must be in the future, and a take-back
    (a negative amount) has no expiry or priority; the API answers 422 for either (test_grants.py).
    Such bodies become the nearest valid one, so a 422 here is a real finding."""
    if not isinstance(body, dict):
        return body
    amount, expires = body.get("amount_cents"), body.get("expires_at")
    if isinstance(amount, int | float) and not isinstance(amount, bool) and amount < 0:
        return {name: value for name, value in body.items() if name not in ("expires_at", "priority")}
    if isinstance(expires, str):
        try:
            moment = datetime.fromisoformat(expires)
        except ValueError:
            return body
        if moment.tzinfo is not None and moment <= utcnow() + timedelta(minutes=1):
            return {**body, "expires_at": (utcnow() + timedelta(days=30)).isoformat()}
    return body


@pytest.fixture
def operator_key(pg_engine):
    API.dependency_overrides[operator_api.operator_engine] = lambda: pg_engine
    with Session(pg_engine, expire_on_commit=False) as session:
        _, account = owner_and_account(session)
        grant(session, account.id, 10**9, key="schema-grant")
        user, _ = staff.create_operator(session, "ops@ledgerdesk.example", base_url="http://c")
        _, full_key = keys.create_key(session, staff.Operator(user.id, user.email, ""), "Schemathesis")
        session.commit()
    OPERATOR_KEY.append(full_key)
    yield
    OPERATOR_KEY.clear()
    API.dependency_overrides.clear()


def _balances_add_up(engine) -> None:
    with Session(engine) as session:
        for account_id in session.exec(select(Account.id)).all():
            assert ledger.balance_of(session, account_id) == ledger.ledger_sum(session, account_id)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_operator_api_keeps_to_its_document(case, operator_key, pg_engine):
    case.call_and_validate()
    _balances_add_up(pg_engine)


def test_the_document_is_exercised_with_the_key_and_without(operator_key):
    seen: Counter[int] = Counter()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=schema.as_strategy(generation_mode=mode, auth_storage=schema.auth))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            seen[case.call().status_code] += 1

        call()
    assert seen[200] > 0 and seen[401] > 0 and seen[422] > 0, seen
