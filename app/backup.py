"""`python -m app.cli backup PATH` and `restore PATH` for a SQLite database, with SQLite's online
backup API: the copy is one consistent snapshot, taken while the console keeps serving (WAL: the
copy reads while others write). PostgreSQL is backed up with pg_dump (README, Backup)."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import ConfigError

# How recent a worker's heartbeat means the console is running on that database (health.STALE).
RUNNING_WITHIN_SECONDS = 120
# Rows in these tables do not make a database worth keeping: a console that only started once has them.
BOOKKEEPING_TABLES = {"alembic_version", "worker_heartbeat", "job"}


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise ConfigError(
            "backup and restore copy a SQLite database; DATABASE_URL is PostgreSQL: use pg_dump and pg_restore "
            "(README, Backup)"
        )
    if not url.database or url.database == ":memory:":
        raise ConfigError("DATABASE_URL names no SQLite file")
    return Path(url.database)


def backup(database_url: str, destination: Path, *, force: bool = False) -> int:
    """Copy the live database to `destination` (written beside it, then renamed, so a half-written
    file never has its name). Returns the copy's size in bytes."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise ConfigError(f"there is no database at {source_path}")
    if destination.exists() and not force:
        raise ConfigError(f"{destination} exists: choose another path, or add --force to replace it")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        # All pages in one step: one read transaction, so one consistent snapshot.
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _check(target, partial)
    finally:
        target.close()
        source.close()
    os.replace(partial, destination)
    return destination.stat().st_size


def restore(source_path: Path, database_url: str, *, force: bool = False) -> None:
    """Replace the database with the backup at `source_path`. Refused, unless `force`, when the
    database holds data or a console is running on it (a recent worker heartbeat)."""
    target_path = sqlite_path(database_url)
    if not source_path.exists():
        raise ConfigError(f"there is no backup at {source_path}")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    try:
        _check(source, source_path)
        if not _table_exists(source, "alembic_version"):
            raise ConfigError(f"{source_path} is not a Ledgerdesk database (no alembic_version table)")
        if target_path.exists() and not force:
            reason = _in_use(target_path)
            if reason:
                raise ConfigError(
                    f"{target_path} {reason}: restoring would replace it. Stop the console and keep a backup of "
                    "it first, then add --force to replace it"
                )
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(target_path, timeout=30)
        try:
            # Through SQLite's pager (not a file copy), so the database's own -wal file stays consistent.
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _check(connection: sqlite3.Connection, path: Path) -> None:
    try:
        result = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a SQLite database: {exc}") from None
    if result != "ok":
        raise ConfigError(f"{path} fails SQLite's integrity check: {result}")


def _table_exists(connection: sqlite3.Connection, name: str) -> bool:
    return (
        connection.execute("select 1 from sqlite_master where type = 'table' and name = ?", (name,)).fetchone()
        is not None
    )


def _in_use(path: Path) -> str:
    """Why the database at `path` must not be replaced without --force ("" when it may)."""
    reasons = []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")]
        if "worker_heartbeat" in tables:
            latest = connection.execute("select max(beat_at) from worker_heartbeat").fetchone()[0]
            if latest is not None:
                beat = datetime.fromisoformat(str(latest))
                age = (datetime.now(UTC) - (beat if beat.tzinfo else beat.replace(tzinfo=UTC))).total_seconds()
                if age < RUNNING_WITHIN_SECONDS:
                    reasons.append(f"is in use by a running console (a job worker's heartbeat {age:.0f} s ago)")
        for table in tables:
            if table in BOOKKEEPING_TABLES or table.startswith("sqlite_"):
                continue
            if connection.execute(f'select exists (select 1 from "{table}")').fetchone()[0]:
                reasons.append(f"holds data (table {table} is not empty)")
                break
        return " and ".join(reasons)
    finally:
        connection.close()
