"""PostgreSQL refusing connections for want of slots ("too many connections", which a busy server
with several workers' pools can reach) is an outage like any other: the metering API answers 503
`database_unavailable` with Retry-After, never a 500."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.api import create_api
from app.api import metering as metering_api
from app.db import make_engine
from tests.conftest import PG_ADMIN_URL


@pytest.fixture
def refused_url(postgres_url):
    """The test database as a role PostgreSQL lets open no connection (CONNECTION LIMIT 0)."""
    role = f"ledgerdesk_full_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    yield make_url(postgres_url).set(username=role, password=None).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def test_a_server_out_of_connections_is_answered_503_not_500(refused_url):
    engine = make_engine(refused_url)
    api = create_api()
    api.dependency_overrides[metering_api.metering_engine] = lambda: engine
    with TestClient(api, raise_server_exceptions=False) as client:
        answer = client.post("/api/v1/usage", json={"amount_cents": 5}, headers={"Authorization": "Bearer ld_x"})
    engine.dispose()
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable" and answer.headers["retry-after"] == "1"
