"""The SQL that a database distributed by account (app/models/distribution.py) would send to every
node: statements on an account table that do not name account_id, and where the request path ran
them. Used by tests/integration/test_distribution_queries.py and, over every integration test, by
tests/integration/conftest.py."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path

import app
from app.models import SQLModel
from app.models.distribution import GLOBAL_TABLES

ACCOUNT_TABLES = {table.name for table in SQLModel.metadata.sorted_tables} - set(GLOBAL_TABLES)
TABLE_REFERENCE = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
_CONDITION = re.compile(r"\b(?:WHERE|ON)\b", re.IGNORECASE)

# Off the request path: a statement run while one of these is on the stack is theirs.
NOT_REQUEST_PATH = {
    "app/jobs/": "background jobs: a worker claims any account's due jobs",
    "app/services/operator/": "the operator's back office, across accounts by design",
    "app/services/reconciliation.py": "the janitor: job reconcile_payments sweeps every account's payments",
    "app/cli.py": "the command line",
    "app/seed.py": "seeding",
    "app/demo/": "the demo's data",
    "app/migrations.py": "migrations",
}
_APP = str(Path(app.__file__).parent) + "/"
# Runs every statement: never the one that asked for it.
_DB = "app/db.py"


@lru_cache(maxsize=8192)
def is_unscoped(statement: str) -> bool:
    """Whether the statement touches an account table without filtering by account_id: an INSERT
    names it among its values; any other statement in its conditions (a selected account_id
    column filters nothing)."""
    if not set(TABLE_REFERENCE.findall(statement)) & ACCOUNT_TABLES:
        return False
    if statement.lstrip().upper().startswith("INSERT"):
        return "account_id" not in statement
    return not any("account_id" in condition for condition in _CONDITION.split(statement)[1:])


def unscoped(statements: list[str]) -> list[str]:
    """The statements that touch an account table without naming account_id."""
    return [statement for statement in statements if is_unscoped(statement)]


def request_path_caller() -> str | None:
    """ "module:function" of the innermost app code on the calling thread's stack; None when the
    statement is not the request path's: run under NOT_REQUEST_PATH, or by the test itself
    (factories, setup: no app code on the stack)."""
    innermost = None
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_APP):
            module = "app/" + filename[len(_APP) :]
            if module.startswith(tuple(NOT_REQUEST_PATH)):
                return None
            if innermost is None and module != _DB:
                innermost = f"{module}:{frame.f_code.co_name}"
        frame = frame.f_back
    return innermost
