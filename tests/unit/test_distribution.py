"""The schema can be distributed by account (app/models/distribution.py): every table of the
metadata, those added later too, is either global (with the reason) or an account table that
carries a non-null account_id in every unique constraint and index that enforces uniqueness."""

from __future__ import annotations

from sqlalchemy import Table, UniqueConstraint

from app.models import SQLModel
from app.models.distribution import GLOBAL_TABLES


def _account_tables() -> list[Table]:
    return [table for table in SQLModel.metadata.sorted_tables if table.name not in GLOBAL_TABLES]


def _unique_column_sets(table: Table) -> list[tuple[str, ...]]:
    sets = [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    sets += [tuple(c.name for c in index.columns) for index in table.indexes if index.unique]
    return sets


def test_every_table_is_global_with_a_reason_or_belongs_to_an_account():
    names = {table.name for table in SQLModel.metadata.sorted_tables}
    assert len(names) > 25, "too few tables: is the metadata loaded?"
    assert not set(GLOBAL_TABLES) - names, f"global tables that no longer exist: {set(GLOBAL_TABLES) - names}"
    assert all(len(reason) > 20 for reason in GLOBAL_TABLES.values())
    missing = [t.name for t in _account_tables() if "account_id" not in t.columns]
    assert not missing, f"tables without account_id: add it, or say in GLOBAL_TABLES why they are global: {missing}"
    nullable = [t.name for t in _account_tables() if t.columns["account_id"].nullable]
    assert not nullable, f"account tables whose account_id may be NULL: {nullable}"


def test_every_unique_constraint_of_an_account_table_includes_account_id():
    tables = _account_tables()
    assert {"ledger_entry", "payment", "credit_balance", "metering_request", "invoice_line"} <= {t.name for t in tables}
    broken = [
        f"{table.name}{columns}"
        for table in tables
        for columns in _unique_column_sets(table)
        if "account_id" not in columns
    ]
    assert not broken, f"unique constraints without account_id (a distributed table cannot enforce them): {broken}"


def test_every_primary_key_of_an_account_table_includes_account_id():
    tables = _account_tables()
    broken = [t.name for t in tables if "account_id" not in t.primary_key.columns]
    assert not broken, f"account tables whose primary key lacks account_id (Citus refuses them): {broken}"
    serial = {t.name: list(t.primary_key.columns.keys()) for t in tables if "id" in t.primary_key.columns}
    assert {"ledger_entry", "payment", "invoice", "invoice_line", "webhook_attempt"} <= set(serial)
    assert all(columns == ["account_id", "id"] for columns in serial.values()), serial


def test_every_foreign_key_between_account_tables_carries_account_id_on_both_sides():
    keys = [
        (table.name, key)
        for table in _account_tables()
        for key in table.foreign_key_constraints
        if key.referred_table.name not in GLOBAL_TABLES
    ]
    assert {"invoice_line", "grant_draw", "payment", "invoice", "plan_change", "webhook_attempt"} <= {
        t for t, _ in keys
    }
    broken = [
        f"{table}{[c.name for c in key.columns]} -> {key.referred_table.name}"
        for table, key in keys
        if not any(e.parent.name == "account_id" and e.column.name == "account_id" for e in key.elements)
    ]
    assert not broken, f"foreign keys between account tables without account_id on both sides: {broken}"


def test_no_global_table_refers_to_an_account_table():
    broken = [
        f"{table.name} -> {key.referred_table.name}"
        for table in SQLModel.metadata.sorted_tables
        if table.name in GLOBAL_TABLES
        for key in table.foreign_key_constraints
        if key.referred_table.name not in GLOBAL_TABLES
    ]
    assert not broken, f"global (reference) tables that refer to an account table: {broken}"
