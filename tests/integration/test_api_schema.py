"""The metering API against its own OpenAPI document: schemathesis generates valid and invalid
calls (bodies, headers, the API key) from /api/v1/openapi.json and checks that none is answered
with a 5xx or with anything the document does not promise, and that invalid input is refused.
Runs in-process on the test database, with a funded account's real API key."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlmodel import Session

from app.api import create_api
from app.api import metering as metering_api
from app.services import api_keys, ledger
from tests.factories import grant, owner_and_account

GRANT = 10**12
API = create_api()
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", API)
FUNDED_KEY: list[str] = []


@schema.auth(refresh_interval=None)
class FundedAccountKey:
    """The bearer key of the test's funded account, on every case but those schemathesis makes
    without one on purpose (they must be refused with 401)."""

    def get(self, case, context) -> str:
        return FUNDED_KEY[-1] if FUNDED_KEY else "ld_not_yet_funded"  # asked once at collection

    def set(self, case, data: str, context) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def funded(pg_engine) -> int:
    """The API on the test database, and a funded account's API key."""
    API.dependency_overrides[metering_api.metering_engine] = lambda: pg_engine
    with Session(pg_engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, GRANT, description="", key="schema-grant")
        _, key = api_keys.create_key(session, actor, "Schemathesis")
        session.commit()
    FUNDED_KEY.append(key)
    yield account.id
    FUNDED_KEY.clear()
    API.dependency_overrides.clear()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_metering_api_keeps_to_its_document(case, funded, pg_engine):
    account_id = funded
    case.call_and_validate()
    with Session(pg_engine) as session:
        assert ledger.balance_of(session, account_id) == ledger.ledger_sum(session, account_id)


def test_the_document_is_exercised_with_the_key_and_without(funded):
    """Valid and invalid calls drawn from the document the same way debit for real and are refused
    for real: without the key (401) and for invalid input (422)."""
    seen: Counter[int] = Counter()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=schema.as_strategy(generation_mode=mode, auth_storage=schema.auth))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            seen[case.call().status_code] += 1

        call()
    assert seen[200] > 0 and seen[401] > 0 and seen[422] > 0, seen
