"""The migrated PostgreSQL schema is what app/models/distribution.py says and the models map: the
primary key of every account table includes account_id, every foreign key from one account
table to another goes from the child's account_id to the parent's, and no global table refers to
an account table; no index repeats a primary key (a write for nothing on every insert), while
SQLite, whose primary key is the rowid, keeps the (account_id, id) indexes its keyset pages walk.
Read back from the database with SQLAlchemy's inspector, so a migration that disagrees with the
models fails here. And the
migration that made the keys so gives the jobs queued before it the account their handlers need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from alembic import command
from app.db import make_engine
from app.migrations import alembic_config
from app.models import CreditHold, Job, SQLModel, utcnow
from app.models.distribution import GLOBAL_TABLES
from tests.conftest import _create_pg_database, _drop_pg_database

ACCOUNT_TABLES = sorted({table.name for table in SQLModel.metadata.sorted_tables} - set(GLOBAL_TABLES))


def test_the_migrated_primary_keys_of_account_tables_are_those_of_the_models(pg_engine):
    inspector = inspect(pg_engine)
    migrated = {table: inspector.get_pk_constraint(table)["constrained_columns"] for table in ACCOUNT_TABLES}
    assert {table: columns for table, columns in migrated.items() if "account_id" not in columns} == {}
    assert migrated["ledger_entry"] == ["account_id", "id"] and migrated["invoice_line"] == ["account_id", "id"]
    models = {table: list(SQLModel.metadata.tables[table].primary_key.columns.keys()) for table in ACCOUNT_TABLES}
    assert migrated == models


def test_no_index_repeats_a_primary_key_and_the_keyset_pages_have_theirs(engine):
    inspector = inspect(engine)
    tables = sorted(SQLModel.metadata.tables)
    primary_keys = {table: inspector.get_pk_constraint(table)["constrained_columns"] for table in tables}
    repeated = [
        index["name"]
        for table in tables
        for index in inspector.get_indexes(table)
        if index["column_names"] == primary_keys[table]
    ]
    assert repeated == []
    for table in ("ledger_entry", "audit_event", "chat_message"):
        walked = [index["column_names"] for index in inspector.get_indexes(table)] + [primary_keys[table]]
        assert ["account_id", "id"] in walked, table


def test_the_migrated_foreign_keys_between_account_tables_carry_account_id_on_both_sides(pg_engine):
    inspector = inspect(pg_engine)
    between = {
        (table, tuple(key["constrained_columns"]), key["referred_table"], tuple(key["referred_columns"]))
        for table in ACCOUNT_TABLES
        for key in inspector.get_foreign_keys(table)
        if key["referred_table"] not in GLOBAL_TABLES
    }
    assert len(between) >= 8
    broken = [
        key for key in between if "account_id" not in key[1] or key[3][key[1].index("account_id")] != "account_id"
    ]
    assert broken == []
    models = {
        (
            table,
            tuple(c.name for c in key.columns),
            key.referred_table.name,
            tuple(e.column.name for e in key.elements),
        )
        for table in ACCOUNT_TABLES
        for key in SQLModel.metadata.tables[table].foreign_key_constraints
        if key.referred_table.name not in GLOBAL_TABLES
    }
    assert between == models


def test_no_migrated_global_table_refers_to_an_account_table(pg_engine):
    inspector = inspect(pg_engine)
    referring = [
        (table, key["referred_table"])
        for table in sorted(GLOBAL_TABLES)
        for key in inspector.get_foreign_keys(table)
        if key["referred_table"] not in GLOBAL_TABLES
    ]
    assert referring == []


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path) -> Iterator[str]:
    """A database of its own, for migrating step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'steps.db'}"
        return
    request.getfixturevalue("postgres_url")  # skipped without PostgreSQL
    url = _create_pg_database()
    yield url
    _drop_pg_database(url)


def test_the_migration_gives_pending_jobs_the_account_of_the_row_they_name(empty_url):
    """The handlers find a row by (account_id, id): a job queued before the change gets its
    row's account; one whose row is gone, which would have done nothing, is finished."""
    config = alembic_config(empty_url)
    command.upgrade(config, "20261204_product_previous_plan")
    engine = make_engine(empty_url)
    account_id, hold_id = 7, 3
    # Rows as that revision had them (today's models have columns added since).
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO account (id, public_id, name, logo_path, domain, timezone, language, plan_code,"
                " seats_purchased, plan_status, created_at)"
                " VALUES (:account, 'acct_jobs', 'Acme', '', '', 'UTC', 'en', 'basic', 0, 'active', :now)"
            ),
            {"account": account_id, "now": utcnow()},
        )
        conn.execute(
            text(
                "INSERT INTO credit_hold (id, public_id, account_id, amount_cents, key_held_cents, description,"
                " status, captured_cents, closing_json, expires_at, created_at)"
                " VALUES (:hold, 'hold_x', :account, 500, 0, '', 'open', 0, '', :expires, :now)"
            ),
            {"hold": hold_id, "account": account_id, "expires": utcnow() + timedelta(minutes=1), "now": utcnow()},
        )
        for kind, payload in (
            ("hold_expiry", {"hold_id": hold_id}),
            ("hold_expiry", {"hold_id": hold_id + 1}),
            ("auto_recharge", {"account_id": account_id, "seq": 1}),
        ):
            conn.execute(
                text(
                    "INSERT INTO job (kind, payload, status, run_at, attempts, max_attempts, last_error, created_at)"
                    " VALUES (:kind, :payload, 'pending', :now, 0, 8, '', :now)"
                ),
                {"kind": kind, "payload": json.dumps(payload), "now": utcnow()},
            )
    command.upgrade(config, "heads")
    with Session(engine) as session:
        jobs = [(job.kind, json.loads(job.payload), job.status) for job in session.exec(select(Job).order_by(Job.id))]
        assert session.get(CreditHold, (account_id, hold_id)) is not None
    if engine.dialect.name == "postgresql":
        command.downgrade(config, "20261204_product_previous_plan")
        assert inspect(engine).get_pk_constraint("credit_hold")["constrained_columns"] == ["id"]
        command.upgrade(config, "heads")
        assert inspect(engine).get_pk_constraint("credit_hold")["constrained_columns"] == ["account_id", "id"]
    engine.dispose()
    assert jobs == [
        ("hold_expiry", {"hold_id": hold_id, "account_id": account_id}, "pending"),
        ("hold_expiry", {"hold_id": hold_id + 1}, "done"),
        ("auto_recharge", {"account_id": account_id, "seq": 1}, "pending"),
    ]
