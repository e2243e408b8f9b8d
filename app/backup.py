"""`python -m app.cli backup PATH` and `restore PATH` for a SQLite database and the uploaded files.

The backup is one uncompressed tar: `ledgerdesk.sqlite`, a consistent snapshot taken with SQLite's
online backup API while the console keeps serving (WAL: the copy reads while others write), and
`uploads/`, the uploaded files. PostgreSQL is backed up with pg_dump (README, Backup)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy.engine import make_url

from app.config import ConfigError

# How recent a worker's heartbeat means the console is running on that database (health.STALE).
RUNNING_WITHIN_SECONDS = 120
# Rows in these tables do not make a database worth keeping: a console that only started once has them.
BOOKKEEPING_TABLES = {"alembic_version", "worker_heartbeat", "job"}
DATABASE_MEMBER = "ledgerdesk.sqlite"
UPLOADS_MEMBER = "uploads"
# The first 16 bytes of every SQLite database: a backup from before uploads were included.
SQLITE_HEADER = b"SQLite format 3\0"


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


def backup(database_url: str, uploads: Path, destination: Path, *, force: bool = False) -> int:
    """Write the live database and the uploads directory to `destination` (written beside it,
    then renamed, so a half-written file never has its name). Returns the backup's size in bytes."""
    source_path = sqlite_path(database_url)
    if not source_path.exists():
        raise ConfigError(f"there is no database at {source_path}")
    if destination.exists() and not force:
        raise ConfigError(f"{destination} exists: choose another path, or add --force to replace it")
    partial = destination.with_name(destination.name + ".partial")
    snapshot = destination.with_name(destination.name + ".partial.sqlite")
    try:
        _snapshot(source_path, snapshot)
        # The database first: every file it names was written before its row committed, so is
        # complete here. Only a file deleted in between (a logo replaced meanwhile) can be missing.
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            archive.add(snapshot, DATABASE_MEMBER)
            if uploads.is_dir():
                archive.add(uploads, UPLOADS_MEMBER, filter=_regular_files)
        os.replace(partial, destination)
    finally:
        snapshot.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return destination.stat().st_size


def _snapshot(source_path: Path, path: Path) -> None:
    path.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(path)
    try:
        # All pages in one step: one read transaction, so one consistent snapshot.
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _check(target, path)
    finally:
        target.close()
        source.close()


def _regular_files(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return member if member.isfile() or member.isdir() else None


def restore(source_path: Path, database_url: str, uploads: Path, *, force: bool = False) -> bool:
    """Replace the database and the uploads directory with the backup at `source_path`. Refused,
    unless `force`, when the database holds data or a console is running on it (a recent worker
    heartbeat), or the uploads directory holds files. A backup from before uploads were included
    (a bare SQLite file) restores the database only: returns whether the uploads were restored.
    Anything wrong with the backup is found before anything is replaced."""
    target_path = sqlite_path(database_url)
    if not source_path.is_file():
        raise ConfigError(f"there is no backup at {source_path}")
    with source_path.open("rb") as file:
        bare_database = file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    if bare_database:
        _check_backup_database(source_path, source_path)
        _refuse_in_use(target_path, None, force)
        _restore_database(source_path, target_path)
        return False
    uploads.parent.mkdir(parents=True, exist_ok=True)
    # Beside the uploads directory, so the new one moves into place with a rename.
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=uploads.parent))
    try:
        _unpack(source_path, staging)
        _check_backup_database(staging / DATABASE_MEMBER, source_path)
        _refuse_in_use(target_path, uploads, force)
        restored_uploads = staging / UPLOADS_MEMBER
        restored_uploads.mkdir(exist_ok=True)
        previous = staging / "previous-uploads"
        if uploads.exists():
            os.rename(uploads, previous)
        try:
            os.rename(restored_uploads, uploads)
            _restore_database(staging / DATABASE_MEMBER, target_path)
        except BaseException:
            # The database is unchanged (SQLite's backup writes it in one transaction): so are the files.
            if not restored_uploads.exists():
                os.rename(uploads, restored_uploads)
            if previous.exists():
                os.rename(previous, uploads)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def _unpack(source_path: Path, staging: Path) -> None:
    """Extract the backup into `staging`, refusing anything but the database and files under uploads/."""
    try:
        with tarfile.open(source_path, "r:") as archive:
            members = archive.getmembers()
            names = [member.name for member in members]
            if names.count(DATABASE_MEMBER) != 1:
                raise ConfigError(f"{source_path} is not a Ledgerdesk backup (no {DATABASE_MEMBER} in it)")
            for member in members:
                path = PurePosixPath(member.name)
                inside = path.parts[:1] == (UPLOADS_MEMBER,) and ".." not in path.parts
                inside = inside and (len(path.parts) > 1 or member.isdir())
                if member.name != DATABASE_MEMBER and not (inside and (member.isfile() or member.isdir())):
                    raise ConfigError(
                        f"{source_path} is not a Ledgerdesk backup: {member.name!r} is not a file under uploads/"
                    )
            archive.extractall(staging, filter="data")
    except (tarfile.TarError, EOFError) as exc:
        raise ConfigError(f"{source_path} is not a Ledgerdesk backup, or is truncated: {exc}") from None


def _check_backup_database(path: Path, shown: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        _check(connection, shown)
        if not _table_exists(connection, "alembic_version"):
            raise ConfigError(f"{shown} is not a Ledgerdesk database (no alembic_version table)")
    finally:
        connection.close()


def _refuse_in_use(target_path: Path, uploads: Path | None, force: bool) -> None:
    if force:
        return
    reason = _in_use(target_path) if target_path.exists() else ""
    if not reason and uploads is not None and uploads.is_dir() and any(p.is_file() for p in uploads.rglob("*")):
        reason = f"has uploaded files in {uploads}"
    if reason:
        shown = target_path if target_path.exists() else uploads
        raise ConfigError(
            f"{shown} {reason}: restoring would replace it. Stop the console and keep a backup of it first, then "
            "add --force to replace it"
        )


def _restore_database(source_path: Path, target_path: Path) -> None:
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        # Through SQLite's pager (not a file copy), so the database's own -wal file stays consistent.
        source.backup(target)
    finally:
        target.close()
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
