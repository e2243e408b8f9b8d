"""The migrated PostgreSQL schema is what app/models/distribution.py says and the models map: the
primary key of every account table includes account_id, every foreign key from one account
table to another goes from the child's account_id to the parent's, and no global table refers to
an account table. Read back from the database
with SQLAlchemy's inspector, so a migration that disagrees with the models fails here."""

from __future__ import annotations

from sqlalchemy import inspect

from app.models import SQLModel
from app.models.distribution import GLOBAL_TABLES

ACCOUNT_TABLES = sorted({table.name for table in SQLModel.metadata.sorted_tables} - set(GLOBAL_TABLES))


def test_the_migrated_primary_keys_of_account_tables_are_those_of_the_models(pg_engine):
    inspector = inspect(pg_engine)
    migrated = {table: inspector.get_pk_constraint(table)["constrained_columns"] for table in ACCOUNT_TABLES}
    assert {table: columns for table, columns in migrated.items() if "account_id" not in columns} == {}
    assert migrated["ledger_entry"] == ["account_id", "id"] and migrated["invoice_line"] == ["account_id", "id"]
    models = {table: list(SQLModel.metadata.tables[table].primary_key.columns.keys()) for table in ACCOUNT_TABLES}
    assert migrated == models


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
