"""`python -m app.cli backup` / `restore` on SQLite: a backup taken from a running console under
metering load restores into a fresh directory with every debit acknowledged before it began and
every balance equal to its ledger sum, and a console started on it carries on; restore refuses a
database in use or holding data unless --force; PostgreSQL is pointed to pg_dump."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlmodel import Session, select

from app.cli import _child_env
from app.config import PROJECT_ROOT
from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import Account, LedgerEntry
from app.services import api_keys, ledger
from tests.factories import grant, owner_and_account
from tests.live_backend import LiveBackend


def _cli(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**_child_env(), "DATABASE_URL": database_url, "LEDGERDESK_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _funded_key(url: str) -> str:
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        grant(session, account.id, 1_000_000, description="", key="grant")
        _, key = api_keys.create_key(session, actor, "Backup")
        session.commit()
    engine.dispose()
    return key


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


def test_a_backup_under_metering_load_restores_every_acknowledged_debit(tmp_path):
    url = f"sqlite:///{tmp_path / 'live' / 'ledgerdesk.db'}"
    (tmp_path / "live").mkdir()
    upgrade_to_head(url)
    key = _funded_key(url)
    backup_file = tmp_path / "backups" / "ledgerdesk.sqlite"
    backup_file.parent.mkdir()

    with LiveBackend(tmp_path / "live", url) as live, Load(live.url, key) as load:
        while len(load.acknowledged) < 200:
            time.sleep(0.05)
        started = time.monotonic()
        done = _cli("backup", str(backup_file), database_url=url, data_dir=tmp_path / "live")
        assert done.returncode == 0, done.stderr
        assert f"Backed up to {backup_file}" in done.stdout
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
    entries = _usage_entries(fresh_url)  # and every balance equals its ledger sum
    assert before_backup <= entries, f"{len(before_backup - entries)} acknowledged debits are missing"
    assert entries <= _usage_entries(url)  # nothing the console did not do
    assert len(entries) < len(all_acknowledged)  # the load went on after the snapshot

    # Over a stopped database that holds data: refused without --force, done with it.
    again = _cli("restore", str(backup_file), database_url=url, data_dir=tmp_path / "live")
    assert again.returncode == 2 and "holds data" in again.stderr
    forced = _cli("restore", str(backup_file), "--force", database_url=url, data_dir=tmp_path / "live")
    assert forced.returncode == 0, forced.stderr
    assert _usage_entries(url) == entries

    # A console started on the restored database carries on with the same key.
    upgrade_to_head(fresh_url)
    with LiveBackend(fresh, fresh_url) as console:
        answer = httpx.post(
            f"{console.url}/api/v1/usage", json={"amount_cents": 7}, headers={"Authorization": f"Bearer {key}"}
        )
        assert answer.status_code == 200, answer.text
    assert len(_usage_entries(fresh_url)) == len(entries) + 1


def test_backup_refuses_to_overwrite_and_postgresql_is_pointed_to_pg_dump(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledgerdesk.db'}"
    upgrade_to_head(url)
    existing = tmp_path / "existing.sqlite"
    existing.write_text("keep me")
    refused = _cli("backup", str(existing), database_url=url, data_dir=tmp_path)
    assert refused.returncode == 2 and "exists" in refused.stderr and existing.read_text() == "keep me"
    not_a_backup = _cli("restore", str(existing), database_url=f"sqlite:///{tmp_path / 'new.db'}", data_dir=tmp_path)
    assert not_a_backup.returncode == 2 and "not a SQLite database" in not_a_backup.stderr
    postgres = _cli(
        "backup", str(tmp_path / "pg.dump"), database_url="postgresql+psycopg://u@127.0.0.1/db", data_dir=tmp_path
    )
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr
