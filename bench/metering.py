"""The metering API under load: POST /api/v1/usage from 64 concurrent clients on loopback against
the real app served the way production serves it (Reflex's production backend: granian, ASGI,
app.app:app with the API mounted), on SQLite and on PostgreSQL, 1,000 accounts with one key each.
Beside it, on the same PostgreSQL, pgbench runs the statement the API runs (key lookup,
conditional balance update, ledger insert: metering.FAST_DEBIT_SQL) with 64 clients, and the
ratio of the two is printed. At the end every account's balance must equal its ledger sum and
the debits must add up to the answered calls times the amount: no lost or doubled debit.

    .venv/bin/python bench/metering.py [--seconds 10] [--workers 1] [--only sqlite|postgresql]
                                       [--idempotency-keys]

TEST_DATABASE_URL overrides the PostgreSQL admin URL (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import hashlib
import itertools
import multiprocessing
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import Account, ApiKey, CreditBalance, LedgerEntry
from app.services.metering import FAST_DEBIT_SQL
from tests.live_backend import LiveBackend

ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ACCOUNTS = 1_000
CLIENTS = 64
WARMUP_SECONDS = 2.0
AMOUNT = 7
GRANT = 10**12
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    answered_ok: int  # 200s over the whole run, warm-up included: what the ledger must show
    cpu_seconds: float  # the load generator's own, during the measured window
    cpu_note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="granian workers (Reflex runs 1 without Redis)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--idempotency-keys", action="store_true", help="send a unique Idempotency-Key with each call")
    args = parser.parse_args()
    pgbench = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    print(
        f"metering API: POST /api/v1/usage, {CLIENTS} clients on loopback, {ACCOUNTS:,} accounts, "
        f"{args.seconds:g} s measured after {WARMUP_SECONDS:g} s warm-up, granian with {args.workers} worker(s), "
        f"{os.cpu_count()} cores shared by server, database and load generator"
        + (", each call with its own Idempotency-Key" if args.idempotency_keys else "")
    )
    with tempfile.TemporaryDirectory(prefix="ledgerdesk-bench-") as tmp:
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{tmp}/bench.db"
            keys = prepare(url)
            api = run_api(url, keys, Path(tmp) / "sqlite", args)
            report("SQLite", api, verify(url, api.answered_ok))
        if args.only in (None, "postgresql"):
            with throwaway_database() as url:
                keys = prepare(url)
                api = run_api(url, keys, Path(tmp) / "postgresql", args)
                report("PostgreSQL", api, verify(url, api.answered_ok))
                if pgbench is None:
                    print("pgbench: not found (it ships with postgresql-client); no comparison")
                    return
                tps, latency, transactions = run_pgbench(pgbench, url, keys, args.seconds, args.idempotency_keys)
                checks = verify(url, api.answered_ok + transactions)
                print(
                    f"  pgbench, the same statement, {CLIENTS} clients, prepared: {tps:,.0f} tx/s, "
                    f"average latency {latency:.1f} ms; checks after both: {checks}"
                )
                print(f"  API / pgbench: {api.rate / tps:.2f} (target 0.50)")


def prepare(url: str) -> list[str]:
    """A migrated database with ACCOUNTS accounts, each with one API key and GRANT cents granted."""
    upgrade_to_head(url)
    suffix = secrets.token_urlsafe(18)
    keys = [bench_key(i, suffix) for i in range(1, ACCOUNTS + 1)]
    now = datetime.now(UTC)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(Account),
            [
                {"id": i, "public_id": f"acct_bench{i:05d}", "name": f"Bench {i}", "created_at": now}
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        conn.execute(
            insert(ApiKey),
            [
                {
                    "public_id": f"key_bench{i:05d}",
                    "account_id": i,
                    "name": "bench",
                    "prefix": key[:10],
                    "secret_hash": hashlib.sha256(key.encode()).hexdigest(),
                    "created_at": now,
                }
                for i, key in enumerate(keys, start=1)
            ],
        )
        conn.execute(
            insert(LedgerEntry),
            [
                {
                    "public_id": f"txn_bench{i:05d}",
                    "account_id": i,
                    "amount_cents": GRANT,
                    "balance_after_cents": GRANT,
                    "source": "grant",
                    "description": "Bench grant",
                    "idempotency_key": f"bench-grant:{i}",
                    "created_at": now,
                }
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        conn.execute(
            insert(CreditBalance),
            [
                {"account_id": i, "balance_cents": GRANT, "overage_credit_line_cents": 0, "updated_at": now}
                for i in range(1, ACCOUNTS + 1)
            ],
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('account', 'id'), :n)"), {"n": ACCOUNTS})
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return keys


def bench_key(number: int, suffix: str) -> str:
    # pgbench rebuilds the same key from the account number (see run_pgbench).
    return f"ld_bench{number:06d}{suffix}"


def run_api(
    url: str, keys: list[str], data_dir: Path, args, clients: int = CLIENTS, env: dict | None = None
) -> LoadResult:
    backend = LiveBackend(data_dir, url, workers=args.workers, env=env)
    backend.start()
    try:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        loader = context.Process(
            target=load, args=(backend.port, keys, args.seconds, args.idempotency_keys, clients, sender)
        )
        loader.start()
        time.sleep(WARMUP_SECONDS)
        server_cpu, postgres_cpu = cpu_of_tree(backend.process.pid), cpu_of_postgres()
        time.sleep(args.seconds)
        server_cpu = cpu_of_tree(backend.process.pid) - server_cpu
        postgres_cpu = cpu_of_postgres() - postgres_cpu
        result: LoadResult = receiver.recv()
        loader.join()
    finally:
        backend.stop()
    per_call = 1000 / max(result.requests, 1)
    result.cpu_note = (
        f"CPU ms per call: server {server_cpu * per_call:.2f}, "
        + (f"postgres {postgres_cpu * per_call:.2f}, " if url.startswith("postgresql") else "")
        + f"load generator {result.cpu_seconds * per_call:.2f}"
    )
    return result


def load(port: int, keys: list[str], seconds: float, idempotency_keys: bool, clients: int, sender) -> None:
    """The load generator, in its own process: `clients` keep-alive connections, raw HTTP/1.1."""
    import uvloop

    sender.send(uvloop.run(_load(port, keys, seconds, idempotency_keys, clients)))


async def _load(port: int, keys: list[str], seconds: float, idempotency_keys: bool, clients: int) -> LoadResult:
    body = f'{{"amount_cents": {AMOUNT}, "description": "bench call"}}'.encode()
    heads = [
        f"POST /api/v1/usage HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        for key in keys
    ]
    requests = [(head + "\r\n").encode() + body for head in heads]
    calls = itertools.count()

    def request(rng: random.Random) -> bytes:
        if not idempotency_keys:
            return rng.choice(requests)
        return f"{rng.choice(heads)}Idempotency-Key: bench-{next(calls)}\r\n\r\n".encode() + body

    content_length = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)
    started = time.monotonic()
    measure_from, measure_to = started + WARMUP_SECONDS, started + WARMUP_SECONDS + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    answered_ok = 0

    async def client(seed: int) -> None:
        nonlocal answered_ok
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (now := time.monotonic()) < measure_to:
            sent = time.perf_counter()
            writer.write(request(rng))
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(content_length.search(head).group(1)))
            elapsed = time.perf_counter() - sent
            status = int(head[9:12])
            answered_ok += status == 200
            if now >= measure_from:
                latencies.append(elapsed * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    async def own_cpu() -> float:
        await asyncio.sleep(measure_from - time.monotonic())
        cpu = time.process_time()
        await asyncio.sleep(measure_to - time.monotonic())
        return time.process_time() - cpu

    cpu, *_ = await asyncio.gather(own_cpu(), *(client(seed) for seed in range(clients)))
    return LoadResult(len(latencies), seconds, latencies, statuses, answered_ok, cpu)


def run_pgbench(
    pgbench: str, url: str, keys: list[str], seconds: float, idempotency_keys: bool
) -> tuple[float, float, int]:
    """pgbench with FAST_DEBIT_SQL, parameters made the way the API makes them: the key hash of a
    random account, amount, time, UTC day, entry id, description, random ledger key, no last-used
    write, and an Idempotency-Key with the body's fingerprint or none. :r is one random number per
    transaction, so a parameter used twice has one value."""
    suffix = keys[0][len(bench_key(1, "")) :]
    parameters = {
        "1": f"encode(sha256(convert_to('ld_bench' || lpad(:n::text, 6, '0') || '{suffix}', 'UTF8')), 'hex')",
        "2": str(AMOUNT),
        "3": "now()",
        "4": "(now() AT TIME ZONE 'UTC')::date",
        "5": "('txn_' || :r)",
        "6": "'bench call'",
        "7": "('usage:' || :r)",
        "8": "false",
        "9": "('bench-' || :r)" if idempotency_keys else "NULL",
        "10": "md5(:r::text)" if idempotency_keys else "NULL",
    }
    statement = re.sub(r"\$(\d+)", lambda match: parameters[match.group(1)], FAST_DEBIT_SQL).strip()
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(f"\\set n random(1, {len(keys)})\n\\set r random(1, {2**62})\n{statement};\n")
    target = make_url(url)
    env = {**os.environ, "PGPASSWORD": target.password or ""}
    command = [
        pgbench,
        "-n",
        "-M",
        "prepared",
        "-c",
        str(CLIENTS),
        "-j",
        "2",
        "-T",
        str(int(seconds)),
        "-h",
        target.host or "127.0.0.1",
        "-p",
        str(target.port or 5432),
        "-U",
        target.username or "postgres",
        "-f",
        str(script),
        target.database,
    ]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    script.unlink()
    tps = float(re.search(r"tps = ([\d.]+)", output).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", output).group(1))
    return tps, latency, transactions


def verify(url: str, expected_calls: int) -> str:
    """Every balance equals its ledger sum; debits add up to the answered calls times the amount."""
    engine = create_engine(url)
    with engine.connect() as conn:
        sums = dict(
            conn.execute(
                select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents)).group_by(LedgerEntry.account_id)
            ).all()
        )
        balances = dict(conn.execute(select(CreditBalance.account_id, CreditBalance.balance_cents)).all())
        usage_entries = conn.execute(select(func.count()).where(LedgerEntry.source == "usage")).scalar_one()
    engine.dispose()
    mismatched = sum(1 for account_id, balance in balances.items() if sums.get(account_id) != balance)
    debited = sum(GRANT - balance for balance in balances.values())
    expected = expected_calls * AMOUNT
    ok = mismatched == 0 and usage_entries == expected_calls and debited == expected
    return (
        f"{'OK' if ok else 'FAILED'}: {mismatched} balances differ from their ledger sums; "
        f"{usage_entries:,} usage entries for {expected_calls:,} answered calls; "
        f"debited {debited:,} cents, expected {expected:,}"
    )


def report(name: str, result: LoadResult, checks: str) -> None:
    errors = sum(count for status, count in result.statuses.items() if status != 200)
    print(
        f"{name}: {result.rate:,.0f} calls/s, p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms, "
        f"{errors} non-200 answers {dict(sorted(result.statuses.items()))}"
    )
    print(f"  {result.cpu_note}")
    print(f"  checks: {checks}")


class throwaway_database:
    def __enter__(self) -> str:
        self.name = f"ledgerdesk_bench_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return make_url(ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def __exit__(self, *_exc) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_of_tree(root: int) -> float:
    """CPU seconds used so far by a process and its descendants (granian's workers)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_of(pid)
        todo.extend(children.get(pid, []))
    return total


def cpu_of_postgres() -> float:
    total = 0.0
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            if Path(comm).read_text().strip() == "postgres":
                total += cpu_of(int(comm.split("/")[2]))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


if __name__ == "__main__":
    main()
