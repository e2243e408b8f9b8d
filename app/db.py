"""Engine and transaction helpers. One transaction per request or event handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from app.config import get_settings


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

        return engine
    # A fixed pool (no overflow), so that workers × pools fits max_connections (cli checks it);
    # more threads than connections wait for one.
    return create_engine(url, pool_size=get_settings().database_pool_size, max_overflow=0, pool_pre_ping=True)


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
