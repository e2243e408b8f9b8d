"""What every endpoint answers when the database went away (restart, failover, network): a clean
503 `database_unavailable`; the next call reconnects (asyncpg's pool replaces closed connections,
SQLAlchemy's pre-ping checks them)."""

from __future__ import annotations

import logging

import asyncpg
from sqlalchemy import exc as sqlalchemy_errors

log = logging.getLogger("ledgerdesk.api")

DATABASE_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # "terminating connection", "starting up"
    asyncpg.exceptions.TooManyConnectionsError,  # no connection slot left (psycopg's is an OperationalError)
    sqlalchemy_errors.OperationalError,
    sqlalchemy_errors.InterfaceError,
    ConnectionError,
    TimeoutError,
)
BODY = {
    "error": {
        "code": "database_unavailable",
        "message": "The database is unavailable; retry shortly (a debit may have happened: reuse its Idempotency-Key).",
    }
}
HEADERS = {"Retry-After": "1"}


def log_unavailable(method: str, path: str, exc: BaseException) -> None:
    cause = getattr(exc, "orig", None) or exc
    reason = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    log.warning("%s %s: database unavailable: %s", method, path, reason)
