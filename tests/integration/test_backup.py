"""`python -m app.cli backup` / `restore` on SQLite: a backup taken from a running console under
metering load restores into a fresh directory with every debit acknowledged before it began, every
balance equal to its ledger sum and the uploaded logo, and a console started on it carries on and
serves the logo; restore refuses a database in use or holding data unless --force; a backup from
before uploads were included restores the database only; a backup that is not one, is truncated or
names files outside the uploads directory changes nothing; PostgreSQL is pointed to pg_dump."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app import backup
from app.cli import _child_env
from app.config import PROJECT_ROOT, ConfigError
from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import Account, LedgerEntry
from app.services import api_keys, auth, company, ledger
from tests.factories import grant, owner_and_account, signed_in_token
from tests.live_backend import LiveBackend

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x08\x06\x00\x00\x00" + bytes(range(256))


def _cli(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**_child_env(), "DATABASE_URL": database_url, "LEDGERDESK_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _funded_key(url: str, data_dir: Path, monkeypatch) -> str:
    """An account with credit, an API key and a logo uploaded into `data_dir`'s uploads directory."""
    monkeypatch.setattr(company, "uploads_dir", lambda: data_dir / "uploads")
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, 1_000_000, description="", key="grant")
        _, key = api_keys.create_key(session, actor, "Backup")
        company.save_logo(session, actor, PNG)
        session.commit()
    engine.dispose()
    return key


def _served_logo(console: LiveBackend, url: str) -> bytes:
    engine = make_engine(url)
    with Session(engine) as session:
        token = signed_in_token(session, "owner@example.com")
        session.commit()
    engine.dispose()
    answer = httpx.get(f"{console.url}/api/account/logo", cookies={auth.SESSION_COOKIE: token})
    assert answer.status_code == 200, answer.text
    return answer.content


def _files(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


class Load:
    """Metering calls from 16 concurrent clients until stopped; each 200 with the time it was answered."""

    def __init__(self, url: str, key: str):
        self.url, self.key = url, key
        self.acknowledged: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:

            async def client_loop() -> None:
                while not self.stopping.is_set():
                    response = await client.post(
                        f"{self.url}/api/v1/usage",
                        json={"amount_cents": 7},
                        headers={"Authorization": f"Bearer {self.key}"},
                    )
                    if response.status_code == 200:
                        self.acknowledged.append((time.monotonic(), response.json()["entry_id"]))

            await asyncio.gather(*(client_loop() for _ in range(16)))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.thread.join(60)


def _usage_entries(url: str) -> set[str]:
    engine = make_engine(url)
    with Session(engine) as session:
        entries = set(session.exec(select(LedgerEntry.public_id).where(LedgerEntry.source == "usage")).all())
        for account_id in session.exec(select(Account.id)).all():
            assert ledger.balance_of(session, account_id) == ledger.ledger_sum(session, account_id)
    engine.dispose()
    return entries


def test_a_backup_under_metering_load_restores_every_acknowledged_debit_and_the_logo(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'live' / 'ledgerdesk.db'}"
    (tmp_path / "live").mkdir()
    upgrade_to_head(url)
    key = _funded_key(url, tmp_path / "live", monkeypatch)
    backup_file = tmp_path / "backups" / "ledgerdesk.tar"
    backup_file.parent.mkdir()

    with LiveBackend(tmp_path / "live", url) as live, Load(live.url, key) as load:
        while len(load.acknowledged) < 200:
            time.sleep(0.05)
        started = time.monotonic()
        done = _cli("backup", str(backup_file), database_url=url, data_dir=tmp_path / "live")
        assert done.returncode == 0, done.stderr
        assert f"to {backup_file}" in done.stdout
        # Restoring over the running console's database is refused.
        in_use = _cli("restore", str(backup_file), database_url=url, data_dir=tmp_path / "live")
        assert in_use.returncode == 2
        assert "is in use by a running console" in in_use.stderr and "--force" in in_use.stderr
        time.sleep(0.5)  # load goes on after the backup
    before_backup = {entry for answered, entry in load.acknowledged if answered < started}
    all_acknowledged = {entry for _, entry in load.acknowledged}
    assert len(before_backup) >= 200

    fresh = tmp_path / "restored"
    fresh_url = f"sqlite:///{fresh / 'ledgerdesk.db'}"
    restored = _cli("restore", str(backup_file), database_url=fresh_url, data_dir=fresh)
    assert restored.returncode == 0, restored.stderr
    assert list(_files(fresh / "uploads").values()) == [PNG]
    entries = _usage_entries(fresh_url)  # and every balance equals its ledger sum
    assert before_backup <= entries, f"{len(before_backup - entries)} acknowledged debits are missing"
    assert entries <= _usage_entries(url)  # nothing the console did not do
    assert len(entries) < len(all_acknowledged)  # the load went on after the snapshot

    # Over a stopped database that holds data: refused without --force, done with it; the uploads
    # directory is put back as it was (a file uploaded since is gone).
    (tmp_path / "live" / "uploads" / "logos" / "later.png").write_bytes(PNG)
    again = _cli("restore", str(backup_file), database_url=url, data_dir=tmp_path / "live")
    assert again.returncode == 2 and "holds data" in again.stderr
    forced = _cli("restore", str(backup_file), "--force", database_url=url, data_dir=tmp_path / "live")
    assert forced.returncode == 0, forced.stderr
    assert _usage_entries(url) == entries
    assert _files(tmp_path / "live" / "uploads") == _files(fresh / "uploads")

    # A console started on the restored database carries on with the same key.
    upgrade_to_head(fresh_url)
    with LiveBackend(fresh, fresh_url) as console:
        answer = httpx.post(
            f"{console.url}/api/v1/usage", json={"amount_cents": 7}, headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200, answer.text
        assert _served_logo(console, fresh_url) == PNG
    assert len(_usage_entries(fresh_url)) == len(entries) + 1


def test_backup_refuses_to_overwrite_and_postgresql_is_pointed_to_pg_dump(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    existing = tmp_path / "existing.sqlite"
    existing.write_text("keep me")
    refused = _cli("backup", str(existing), database_url=url, data_dir=tmp_path)
    assert refused.returncode == 2 and "exists" in refused.stderr and existing.read_text() == "keep me"
    not_a_backup = _cli("restore", str(existing), database_url=f"sqlite:///{tmp_path / 'new.db'}", data_dir=tmp_path)
    assert not_a_backup.returncode == 2 and "not a Ledgerdesk backup" in not_a_backup.stderr
    assert not (tmp_path / "new.db").exists()
    postgres = _cli(
        "backup", str(tmp_path / "pg.dump"), database_url="postgresql+psycopg://u@127.0.0.1/db", data_dir=tmp_path
    )
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr


def test_a_backup_of_the_database_only_restores_it_and_leaves_the_uploads_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'old' / 'ledgerdesk.db'}"
    (tmp_path / "old").mkdir()
    upgrade_to_head(url)
    old_backup = tmp_path / "ledgerdesk.sqlite"  # what `backup` wrote before it included the uploads
    with sqlite3.connect(tmp_path / "old" / "ledgerdesk.db") as source, sqlite3.connect(old_backup) as target:
        source.backup(target)
    fresh = tmp_path / "fresh"
    (fresh / "uploads" / "logos").mkdir(parents=True)
    (fresh / "uploads" / "logos" / "kept.png").write_bytes(PNG)
    fresh_url = f"sqlite:///{fresh / 'ledgerdesk.db'}"

    restored = _cli("restore", str(old_backup), database_url=fresh_url, data_dir=fresh)

    assert restored.returncode == 0, restored.stderr
    assert "a backup of the database only" in restored.stdout and "was left as it was" in restored.stdout
    assert _files(fresh / "uploads") == {"logos/kept.png": PNG}
    with sqlite3.connect(fresh / "ledgerdesk.db") as connection:
        assert connection.execute("select count(*) from alembic_version").fetchone()[0] == 1


def test_restore_into_an_empty_database_refuses_uploads_it_would_replace_unless_forced(tmp_path, installed):
    _, _, good = installed
    fresh = tmp_path / "fresh"
    (fresh / "uploads" / "logos").mkdir(parents=True)
    (fresh / "uploads" / "logos" / "theirs.png").write_bytes(b"someone else's logo")
    fresh_url = f"sqlite:///{fresh / 'ledgerdesk.db'}"

    refused = _cli("restore", str(good), database_url=fresh_url, data_dir=fresh)

    assert refused.returncode == 2 and "has uploaded files" in refused.stderr and "--force" in refused.stderr
    assert _files(fresh / "uploads") == {"logos/theirs.png": b"someone else's logo"}
    assert not (fresh / "ledgerdesk.db").exists()
    forced = _cli("restore", str(good), "--force", database_url=fresh_url, data_dir=fresh)
    assert forced.returncode == 0, forced.stderr
    assert _files(fresh / "uploads") == _files(tmp_path / "data" / "uploads")


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for info, content in members:
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A stopped console's database holding data and its uploads directory with a logo; a backup of them."""
    url = f"sqlite:///{tmp_path / 'data' / 'ledgerdesk.db'}"
    (tmp_path / "data").mkdir()
    upgrade_to_head(url)
    _funded_key(url, tmp_path / "data", monkeypatch)
    good = tmp_path / "good.tar"
    backup.backup(url, tmp_path / "data" / "uploads", good)
    return url, tmp_path / "data", good


def _state(data_dir: Path) -> tuple[str, dict[str, bytes], list[str]]:
    database = hashlib.sha256((data_dir / "ledgerdesk.db").read_bytes()).hexdigest()
    return database, _files(data_dir / "uploads"), sorted(path.name for path in data_dir.iterdir())


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated", "truncated"),
        ("escaping", "'uploads/../../escaped.txt' is not a file under uploads/"),
        ("absolute", "'/tmp/escaped.txt' is not a file under uploads/"),
        ("elsewhere", "'elsewhere.txt' is not a file under uploads/"),
        ("symlink", "'uploads/link' is not a file under uploads/"),
        ("uploads a file", "'uploads' is not a file under uploads/"),
        ("no database", "no ledgerdesk.sqlite in it"),
    ],
)
def test_a_bad_backup_is_refused_even_with_force_and_changes_nothing(tmp_path, installed, case, message):
    url, data_dir, good = installed
    snapshot = good.read_bytes()
    database = _member(backup.DATABASE_MEMBER), _database_bytes(good)
    bad = tmp_path / "bad.tar"
    if case == "truncated":
        bad.write_bytes(snapshot[: len(snapshot) // 2])
    elif case == "escaping":
        _archive(bad, [database, (_member("uploads/../../escaped.txt"), b"x")])
    elif case == "absolute":
        _archive(bad, [database, (_member("/tmp/escaped.txt"), b"x")])
    elif case == "elsewhere":
        _archive(bad, [database, (_member("elsewhere.txt"), b"x")])
    elif case == "symlink":
        _archive(bad, [database, (_member("uploads/link", tarfile.SYMTYPE, "/etc/passwd"), b"")])
    elif case == "uploads a file":
        _archive(bad, [database, (_member("uploads"), b"x")])
    else:
        _archive(bad, [(_member("uploads/logos/a.png"), PNG)])
    before = _state(data_dir)

    with pytest.raises(ConfigError) as refused:
        backup.restore(bad, url, data_dir / "uploads", force=True)

    assert message in str(refused.value)
    assert _state(data_dir) == before
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/escaped.txt").exists()


def _database_bytes(archive_path: Path) -> bytes:
    with tarfile.open(archive_path) as archive:
        member = archive.extractfile(backup.DATABASE_MEMBER)
        assert member is not None
        return member.read()


def test_a_restore_that_fails_copying_the_database_puts_the_previous_uploads_back(tmp_path, installed, monkeypatch):
    url, data_dir, good = installed
    (data_dir / "uploads" / "logos" / "later.png").write_bytes(b"uploaded after the backup")
    before = _state(data_dir)

    def disk_full(*_args) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backup, "_restore_database", disk_full)
    with pytest.raises(sqlite3.OperationalError):
        backup.restore(good, url, data_dir / "uploads", force=True)

    assert _state(data_dir) == before
