"""Engine and transaction helpers. One transaction per request or event handler."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from app.config import get_settings
from app.errors import ValidationFailed

NUL_MESSAGE = "Text cannot contain NUL characters."

log = logging.getLogger("ledgerdesk.db")

# A replica that does not answer within this many seconds is taken for down...
REPLICA_CONNECT_TIMEOUT = 2
# ...and the reporting pages read the primary for this long before it is tried again, so a down
# replica costs one warning and one connection attempt per period, not one per page.
REPLICA_RETRY_SECONDS = 30.0


def make_engine(url: str, connect_args: dict[str, Any] | None = None) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            # Let SQLAlchemy's "begin" event issue BEGIN itself (see below).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - driver hook
            # A deferred transaction that reads and then writes fails with "database is
            # locked" under concurrency; taking the write lock up front serializes instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        # A fixed pool (no overflow), so that workers × pools fits max_connections (cli checks it);
        # more threads than connections wait for one.
        engine = create_engine(
            url,
            pool_size=get_settings().database_pool_size,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args=connect_args or {},
        )
    event.listen(engine, "before_cursor_execute", _refuse_nul_parameters)
    return engine


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache(maxsize=1)
def get_replica_engine() -> Engine | None:
    """The streaming replica the reporting pages read (DATABASE_REPLICA_URL); None without one."""
    settings = get_settings()
    if not settings.uses_replica:
        return None
    return make_engine(settings.database_replica_url, connect_args={"connect_timeout": REPLICA_CONNECT_TIMEOUT})


class ReportingWrite(RuntimeError):
    """A write in a reporting session: a programming error (that work belongs in `transaction`)."""

    def __init__(self) -> None:
        super().__init__("a reporting session only reads (it may be on the read replica): write in transaction()")


class _ReplicaDown:
    """Until when the reporting pages skip the replica, shared by the process's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0

    def skipping(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, exc: Exception) -> None:
        with self._lock:
            if self.skipping():
                return  # another thread has warned for this period
            self._until = time.monotonic() + REPLICA_RETRY_SECONDS
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        log.warning(
            "the read replica does not answer; the reporting pages read the primary for the next %d s: %s",
            REPLICA_RETRY_SECONDS,
            reason,
        )


replica_down = _ReplicaDown()


def _begin_reading(session: Session) -> None:
    """Open the session's transaction read-only; on PostgreSQL the database refuses writes too."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def _replica_session() -> Session | None:
    replica = get_replica_engine()
    if replica is None or replica_down.skipping():
        return None
    session = Session(replica, expire_on_commit=False)
    try:
        _begin_reading(session)
    except Exception as exc:  # whatever the driver raises, the replica cannot serve this page
        session.close()
        replica_down.failed(exc)
        return None
    return session


@contextmanager
def reporting_transaction() -> Iterator[Session]:
    """A read-only session for the pages that only read, and read the most rows: on the replica
    when DATABASE_REPLICA_URL is set and it answers, else on the primary. What it shows may lag the
    primary by the replica's delay; a write in it raises ReportingWrite."""
    replica = _replica_session()
    # Nothing to commit: closing the session ends its transaction.
    with replica or Session(get_engine(), expire_on_commit=False) as session:
        if replica is None:
            _begin_reading(session)
        read_only(session, ReportingWrite())
        yield session


@contextmanager
def transaction(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work is committed when the block ends, rolled back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


_READ_ONLY = "ledgerdesk.read_only"


def read_only(session: Session, error: Exception) -> None:
    """From now on every write of this session (a flush with changes, an INSERT, UPDATE or DELETE
    statement) raises `error` instead: a suspended account's console reads but changes nothing."""
    session.info[_READ_ONLY] = error


@event.listens_for(Session, "before_flush")
def _no_flush_when_read_only(session: Session, _context, _instances) -> None:
    error = session.info.get(_READ_ONLY)
    if error is not None and (session.new or session.dirty or session.deleted):
        raise error


@event.listens_for(Session, "do_orm_execute")
def _no_write_when_read_only(state) -> None:
    error = state.session.info.get(_READ_ONLY)
    if error is not None and (state.is_insert or state.is_update or state.is_delete):
        raise error


def _has_nul(parameters) -> bool:
    if isinstance(parameters, dict):
        return any(_has_nul(value) for value in parameters.values())
    if isinstance(parameters, (list, tuple)):
        return any(_has_nul(value) for value in parameters)
    return isinstance(parameters, str) and "\x00" in parameters


def _refuse_nul_parameters(_conn, _cursor, _statement, parameters, _context, _executemany) -> None:
    """PostgreSQL cannot take NUL in text, not even to compare, and SQLite would cut the text
    short there: a NUL a user typed into any field is refused with a clear error before the
    statement runs, on both, instead of failing deep in the driver."""
    if _has_nul(parameters):
        raise ValidationFailed(NUL_MESSAGE)
