"""Shared fixtures: settings for tests, and migrated databases on SQLite and PostgreSQL."""

from __future__ import annotations

pytest_plugins = ["tests.stripe_fixtures", "tests.smtp_fixtures"]

import inspect
import os
import tempfile
import uuid
from pathlib import Path

# Settings are read once; fix the test values before anything imports app.config.
_TEST_DATA = Path(tempfile.mkdtemp(prefix="ledgerdesk-test-"))
if "PYTEST_XDIST_WORKER" in os.environ:
    # Each xdist worker inherits the controller's environment: give it uploads of its own.
    os.environ["LEDGERDESK_DATA_DIR"] = str(_TEST_DATA)
else:
    os.environ.setdefault("LEDGERDESK_DATA_DIR", str(_TEST_DATA))
os.environ.setdefault("PASSWORD_HASH_ROUNDS", "1")
os.environ.setdefault("PASSWORD_HASH_MEMORY_KIB", "1024")
os.environ.pop("SMTP_URL", None)

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import SQLModel
from app.payments import gateway
from tests.factories import Owner, StripeReached, owner_and_account

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_reason() -> str | None:
    """None when PostgreSQL is reachable, else why the PostgreSQL variants are skipped."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means "not reachable here"
        return f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {type(exc).__name__}"


_PG_REASON = postgres_reason()


def _create_pg_database() -> str:
    name = f"ledgerdesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("db") / "test.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def postgres_url():
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    url = _create_pg_database()
    upgrade_to_head(url)
    yield url
    _drop_pg_database(url)


def _wipe(engine: Engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request) -> Engine:
    """A migrated, empty database; each test runs once on SQLite and once on PostgreSQL."""
    url = request.getfixturevalue(f"{request.param}_url")
    engine = make_engine(url)
    _wipe(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url) -> Engine:
    engine = make_engine(sqlite_url)
    _wipe(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url) -> Engine:
    engine = make_engine(postgres_url)
    _wipe(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine) -> Session:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def owner_email() -> str:
    """The email of the `owner` fixture's user; a test module overrides this fixture to pick another."""
    return "owner@example.com"


@pytest.fixture
def owner(session, owner_email) -> Owner:
    """A new account and its owner's actor, committed: `actor, account = owner`. Modules whose tests
    charge through Stripe add `pytestmark = pytest.mark.usefixtures("localstripe")`."""
    return owner_and_account(session, email=owner_email)


@pytest.fixture
def gateway_calls(monkeypatch) -> list[str]:
    """No Stripe at all: every public function of app.payments.gateway is replaced by one that
    records its name and raises StripeReached, so a test sees whether a service got that far."""
    calls: list[str] = []

    def stub(name: str):
        def reached(*_args, **_kwargs):
            calls.append(name)
            raise StripeReached(name)

        return reached

    for name, function in inspect.getmembers(gateway, inspect.isfunction):
        if function.__module__ == gateway.__name__ and not name.startswith("_"):
            monkeypatch.setattr(gateway, name, stub(name))
    return calls
