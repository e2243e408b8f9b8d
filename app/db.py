"""Engine and transaction helpers. One transaction per request or event handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from app.config import get_settings
from app.errors import ValidationFailed

NUL_MESSAGE = "Text cannot contain NUL characters."


def make_engine(url: str) -> Engine:
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
        engine = create_engine(url, pool_size=get_settings().database_pool_size, max_overflow=0, pool_pre_ping=True)
    event.listen(engine, "before_cursor_execute", _refuse_nul_parameters)
    return engine


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


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
