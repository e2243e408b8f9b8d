"""The metering API under load, against the real app served the way production serves it
(Reflex's production backend: granian, ASGI, app.app:app with the API mounted), 1,000 accounts
with one key each, the load generator on loopback (raw HTTP/1.1, keep-alive). In one run:

- PostgreSQL, POST /api/v1/usage from 64 clients over the 1,000 accounts, beside pgbench running
  the statement the API runs per call (metering.FAST_DEBIT_SQL: key lookup, conditional balance
  update, ledger insert) with 64 clients: API / pgbench (target 0.6);
- one hot account from 64 clients, beside pgbench running that statement on one row
  (target 3 x pgbench);
- POST /api/v1/usage/batch, 100 events a request: events/s (target 20,000);
- p50 / p99 at saturation and p99 at a fixed 1,000 calls/s (open loop; target 10 ms);
- SQLite, 64 clients over the 1,000 accounts (target 2,000 calls/s, no lock errors);
- server CPU per call, from /proc (target 150 us);
- with --grants, the 64-client PostgreSQL load again with every account's credits an open credit
  grant and the grants' allocation (app.services.grants.upkeep, the job "grant_upkeep") walking
  the new debits every second beside it: calls/s and server CPU per call against the run without,
  and what the allocation cost per debit walked.

At the end of each database's runs every account's balance must equal its ledger sum and the
debits must add up to the answered calls (API and pgbench) times the amount: no lost or doubled debit.

    .venv/bin/python bench/metering.py [--seconds 10] [--workers 1] [--only sqlite|postgresql]
                                       [--idempotency-keys] [--grants]

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
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import Account, ApiKey, CreditBalance, CreditGrant, GrantCursor, GrantDraw, LedgerEntry
from app.services import grants
from app.services.metering import FAST_DEBIT_SQL
from bench.common import throwaway_database
from tests.live_backend import LiveBackend

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
    answered_ok: int  # debits answered 200 over the whole run, warm-up included: what the ledger must show
    cpu_seconds: float  # the load generator's own, during the measured window
    events_per_request: int = 1
    server_cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def events_rate(self) -> float:
        return self.rate * self.events_per_request

    def percentile(self, p: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]

    def cpu_note(self, postgres: bool) -> str:
        per_event = 1e6 / max(self.requests * self.events_per_request, 1)
        return (
            f"CPU us per call: server {self.server_cpu_seconds * per_event:,.0f}"
            + (f", postgres {self.postgres_cpu_seconds * per_event:,.0f}" if postgres else "")
            + f", load generator {self.cpu_seconds * per_event:,.0f}"
        )


@dataclass(frozen=True)
class Load:
    """One load: which keys, which endpoint, how many clients, closed loop or a fixed rate."""

    keys: list[str]
    clients: int = CLIENTS
    batch: int = 0  # events a request on /usage/batch; 0: POST /usage
    rate: float | None = None  # calls/s over all clients (open loop), None: as fast as answered
    idempotency_keys: bool = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="granian workers (Reflex runs 1 without Redis)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--idempotency-keys", action="store_true", help="send a unique Idempotency-Key with each call")
    parser.add_argument(
        "--grants", action="store_true", help="also run the 64-client load with open credit grants being allocated"
    )
    args = parser.parse_args()
    pgbench = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    load_average = os.getloadavg()[0]
    print(
        f"metering API: {CLIENTS} clients on loopback, {ACCOUNTS:,} accounts, {args.seconds:g} s measured after "
        f"{WARMUP_SECONDS:g} s warm-up, granian with {args.workers} worker(s), {os.cpu_count()} cores shared by "
        f"server, database and load generator (load average {load_average:.1f}, {cpu_pressure()} at the start)"
        + (", each call with its own Idempotency-Key" if args.idempotency_keys else "")
    )
    ratios: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ledgerdesk-bench-") as tmp:
        if args.only in (None, "postgresql"):
            with throwaway_database() as url:
                keys = prepare(url)
                with LiveBackend(Path(tmp) / "postgresql", url, workers=args.workers) as backend:
                    spread = run_load(backend, Load(keys, idempotency_keys=args.idempotency_keys), args.seconds)
                    report("PostgreSQL, 64 clients over 1,000 accounts", spread, postgres=True)
                    hot = run_load(backend, Load(keys[:1]), args.seconds)
                    report("PostgreSQL, one hot account, 64 clients", hot, postgres=True)
                    batch = run_load(backend, Load(keys, clients=16, batch=100), args.seconds)
                    report("PostgreSQL, POST /usage/batch of 100 events, 16 clients", batch, postgres=True)
                    steady = run_load(backend, Load(keys, rate=1_000), args.seconds)
                    report("PostgreSQL, a fixed 1,000 calls/s (open loop)", steady, postgres=True)
                    loads = [spread, hot, batch, steady]
                    if args.grants:
                        make_grants(url)
                        with Allocator(url) as allocator:
                            granted = run_load(backend, Load(keys), args.seconds)
                        report("PostgreSQL, 64 clients, open grants allocated every second", granted, postgres=True)
                        loads.append(granted)
                        ratios.append(allocator.summary(granted, spread))
                answered = sum(load.answered_ok for load in loads)
                if pgbench is None:
                    print("pgbench: not found (it ships with postgresql-client); no comparison")
                else:
                    tps, latency, transactions = run_pgbench(pgbench, url, keys, args.seconds, args.idempotency_keys)
                    print(
                        f"pgbench, the API's per-call statement, 64 clients, prepared: {tps:,.0f} tx/s, {latency:.1f} ms"
                    )
                    hot_tps, hot_latency, hot_transactions = run_pgbench(
                        pgbench, url, keys, args.seconds, False, hot=True
                    )
                    print(f"pgbench, that statement on one row, 64 clients: {hot_tps:,.0f} tx/s, {hot_latency:.1f} ms")
                    answered += transactions + hot_transactions
                    ratios += [
                        f"PostgreSQL API / pgbench per-call statement: {spread.rate / tps:.2f} (target 0.6, aim 1.0)",
                        f"hot account API / pgbench on one row: {hot.rate / hot_tps:.2f} (target 3)",
                    ]
                print(f"PostgreSQL checks after every run: {verify(url, answered)}")
                ratios += [
                    f"batch: {batch.events_rate:,.0f} events/s (target 20,000)",
                    f"p99 at saturation {spread.percentile(99):.1f} ms; at a fixed 1,000 calls/s "
                    f"{steady.percentile(99):.1f} ms, {steady.rate:,.0f} calls/s done (target 10 ms)",
                    f"server CPU per call (PostgreSQL, saturated): "
                    f"{spread.server_cpu_seconds * 1e6 / max(spread.requests, 1):,.0f} us (target 150)",
                ]
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{tmp}/bench.db"
            keys = prepare(url)
            with LiveBackend(Path(tmp) / "sqlite", url, workers=args.workers) as backend:
                lite = run_load(backend, Load(keys, idempotency_keys=args.idempotency_keys), args.seconds)
            report("SQLite, 64 clients over 1,000 accounts", lite, postgres=False)
            print(f"SQLite checks: {verify(url, lite.answered_ok)}")
            errors = sum(count for status, count in lite.statuses.items() if status != 200)
            ratios.append(f"SQLite: {lite.rate:,.0f} calls/s, {errors} errors (target 2,000 calls/s, none)")
    print(f"\nFrom this run (load average {os.getloadavg()[0]:.1f}, {cpu_pressure()} at the end):")
    for line in ratios:
        print(f"  {line}")


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
                {
                    "id": i,
                    "public_id": f"acct_bench{i:05d}",
                    "name": f"Bench {i}",
                    "plan_code": "business",  # 10 million calls a day: the hot account stays within it
                    "created_at": now,
                }
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


def make_grants(url: str) -> None:
    """Every account's bench credits become an open credit grant expiring in 30 days, allocated up
    to now: what is left of it is the balance and the walk starts after the newest entry."""
    engine = make_engine(url)
    with engine.begin() as conn:
        granted = dict(
            conn.execute(select(LedgerEntry.account_id, LedgerEntry.id).where(LedgerEntry.source == "grant")).all()
        )
        newest = dict(
            conn.execute(
                select(LedgerEntry.account_id, func.max(LedgerEntry.id)).group_by(LedgerEntry.account_id)
            ).all()
        )
        balances = dict(conn.execute(select(CreditBalance.account_id, CreditBalance.balance_cents)).all())
        expires = datetime.now(UTC) + timedelta(days=30)
        conn.execute(
            insert(CreditGrant),
            [
                {
                    "public_id": f"grt_bench{account_id:05d}",
                    "account_id": account_id,
                    "ledger_entry_id": entry_id,
                    "amount_cents": GRANT,
                    "remaining_cents": balances[account_id],
                    "expires_at": expires,
                    "priority": 0,
                    "expired": False,
                    "created_at": expires,
                }
                for account_id, entry_id in granted.items()
            ],
        )
        conn.execute(
            insert(GrantCursor),
            [
                {
                    "account_id": account_id,
                    "last_entry_id": newest[account_id],
                    "purchased_cents": 0,
                    "updated_at": expires,
                }
                for account_id in granted
            ],
        )
    engine.dispose()


class Allocator:
    """The job "grant_upkeep" run every second in a thread of the bench, as a job worker would,
    counting the debits it walks and the time it takes."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.stop = threading.Event()
        self.entries, self.busy_seconds, self.runs = 0, 0.0, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            started = time.perf_counter()
            with Session(self.engine) as session:
                grants.upkeep(session, limit=ACCOUNTS)
                session.commit()
            self.busy_seconds += time.perf_counter() - started
            self.runs += 1

    def __enter__(self) -> Allocator:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.thread.join()
        with Session(self.engine) as session:
            started = time.perf_counter()
            grants.upkeep(session, limit=ACCOUNTS)  # the rest of the run's debits
            session.commit()
            self.busy_seconds += time.perf_counter() - started
            self.entries = session.scalar(select(func.count()).select_from(GrantDraw)) or 0
            drawn = session.scalar(select(func.sum(GrantDraw.amount_cents))) or 0
            left = session.scalar(select(func.sum(CreditGrant.remaining_cents))) or 0
            balances = session.scalar(select(func.sum(CreditBalance.balance_cents))) or 0
            # Every debit of the run was drawn from its account's grant, which holds the whole balance.
            self.consistent = drawn == AMOUNT * self.entries and left == balances
        self.engine.dispose()

    def summary(self, granted: LoadResult, plain: LoadResult) -> str:
        def cpu(result: LoadResult) -> float:
            return result.server_cpu_seconds * 1e6 / max(result.requests, 1)

        return (
            f"with open grants allocated every second / without: {granted.rate / plain.rate:.2f} of the calls/s "
            f"({granted.rate:,.0f} / {plain.rate:,.0f}), server CPU per call {cpu(granted):,.0f} / {cpu(plain):,.0f} us; "
            f"the allocation walked {self.entries:,} debits in {self.runs} runs, {self.busy_seconds:.2f} s in all "
            f"({self.busy_seconds * 1e6 / max(self.entries, 1):.0f} us per debit, its draws "
            f"{'equal' if self.consistent else 'DIFFER FROM'} what the grants lost)"
        )


def bench_key(number: int, suffix: str) -> str:
    # pgbench rebuilds the same key from the account number (see run_pgbench).
    return f"ld_bench{number:06d}{suffix}"


def run_load(backend: LiveBackend, spec: Load, seconds: float) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    loader = context.Process(target=load, args=(backend.port, spec, seconds, sender))
    loader.start()
    time.sleep(WARMUP_SECONDS)
    server_cpu, postgres_cpu = cpu_of_tree(backend.process.pid), cpu_of_postgres()
    time.sleep(seconds)
    server_cpu = cpu_of_tree(backend.process.pid) - server_cpu
    postgres_cpu = cpu_of_postgres() - postgres_cpu
    result: LoadResult = receiver.recv()
    loader.join()
    result.server_cpu_seconds, result.postgres_cpu_seconds = server_cpu, postgres_cpu
    return result


def load(port: int, spec: Load, seconds: float, sender) -> None:
    """The load generator, in its own process."""
    import uvloop

    sender.send(uvloop.run(_load(port, spec, seconds)))


async def _load(port: int, spec: Load, seconds: float) -> LoadResult:
    event = f'{{"amount_cents": {AMOUNT}, "description": "bench call"}}'
    body = (f'{{"events": [{", ".join([event] * spec.batch)}]}}' if spec.batch else event).encode()
    path = "/api/v1/usage/batch" if spec.batch else "/api/v1/usage"
    heads = [
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        for key in spec.keys
    ]
    requests = [(head + "\r\n").encode() + body for head in heads]
    calls = itertools.count()

    def request(rng: random.Random) -> bytes:
        if not spec.idempotency_keys:
            return rng.choice(requests)
        return f"{rng.choice(heads)}Idempotency-Key: bench-{next(calls)}\r\n\r\n".encode() + body

    content_length = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)
    started = time.monotonic()
    measure_from, measure_to = started + WARMUP_SECONDS, started + WARMUP_SECONDS + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    answered_ok = 0
    interval = spec.clients / spec.rate if spec.rate else 0.0

    async def client(seed: int) -> None:
        nonlocal answered_ok
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = time.monotonic() + interval * seed / spec.clients
        while (now := time.monotonic()) < measure_to:
            if interval:
                # Open loop: each call at its time; a late answer does not delay the next's schedule.
                due += interval
                await asyncio.sleep(max(0.0, due - now))
            sent = time.perf_counter()
            writer.write(request(rng))
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(content_length.search(head).group(1)))
            elapsed = time.perf_counter() - sent
            status = int(head[9:12])
            answered_ok += (status == 200) * (spec.batch or 1)
            if time.monotonic() >= measure_from and now < measure_to:
                latencies.append(elapsed * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    async def own_cpu() -> float:
        await asyncio.sleep(measure_from - time.monotonic())
        cpu = time.process_time()
        await asyncio.sleep(measure_to - time.monotonic())
        return time.process_time() - cpu

    cpu, *_ = await asyncio.gather(own_cpu(), *(client(seed) for seed in range(spec.clients)))
    return LoadResult(len(latencies), seconds, latencies, statuses, answered_ok, cpu, spec.batch or 1)


def run_pgbench(
    pgbench: str, url: str, keys: list[str], seconds: float, idempotency_keys: bool, hot: bool = False
) -> tuple[float, float, int]:
    """pgbench with FAST_DEBIT_SQL, parameters made the way the API makes them: the key hash of a
    random account (`hot`: always the first), amount, time, UTC day, entry id, description, random ledger key, no last-used
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
    script.write_text(f"\\set n random(1, {1 if hot else len(keys)})\n\\set r random(1, {2**62})\n{statement};\n")
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


def report(name: str, result: LoadResult, postgres: bool) -> None:
    errors = sum(count for status, count in result.statuses.items() if status != 200)
    events = f" ({result.events_rate:,.0f} events/s)" if result.events_per_request > 1 else ""
    print(
        f"{name}: {result.rate:,.0f} requests/s{events}, p50 {result.percentile(50):.1f} ms, "
        f"p99 {result.percentile(99):.1f} ms, {errors} non-200 answers {dict(sorted(result.statuses.items()))}"
    )
    print(f"  {result.cpu_note(postgres)}")


def cpu_pressure() -> str:
    """How much of the last minute some runnable process waited for a CPU (Linux PSI): the share
    of the machine that other work took from this run."""
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n")[0]
    except OSError:
        return "CPU pressure unknown"
    return f"CPU pressure {some.split('avg60=')[1].split()[0]} %"


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
