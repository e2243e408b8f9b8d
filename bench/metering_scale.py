"""The metering API as production runs it at scale: PostgreSQL and Redis (REDIS_URL, Reflex's Redis
state manager, as `serve --workers N` requires), one backend worker and then two, each driven by 64
and then 256 concurrent keep-alive clients over 1,000 accounts (bench/metering.py's load generator
and checks). Prints throughput, p50/p99 latency and the non-200 answers of every run, the two-worker
figure beside the single-worker one of the same run, and after each run checks that every balance
equals its ledger sum and that the debits add up to the answered calls.

    .venv/bin/python bench/metering_scale.py [--seconds 10] [--redis-url redis://127.0.0.1:6379/7]

TEST_DATABASE_URL overrides the PostgreSQL admin URL (a throwaway database is created and dropped).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import throwaway_database
from bench.metering import ACCOUNTS, WARMUP_SECONDS, Load, prepare, run_load, verify
from tests.live_backend import LiveBackend

CLIENT_COUNTS = (64, 256)
WORKER_COUNTS = (1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7"))
    args = parser.parse_args()
    print(
        f"metering API at scale: POST /api/v1/usage on PostgreSQL + Redis, {ACCOUNTS:,} accounts, "
        f"{args.seconds:g} s measured after {WARMUP_SECONDS:g} s warm-up per run, "
        f"{os.cpu_count()} cores shared by server, database and load generator"
    )
    print(f"{'clients':>7}  {'workers':>7}  {'calls/s':>8}  {'vs 1 worker':>11}  {'p50 ms':>7}  {'p99 ms':>7}  errors")
    answered = 0
    with tempfile.TemporaryDirectory(prefix="ledgerdesk-bench-scale-") as tmp, throwaway_database() as url:
        keys = prepare(url)
        for clients in CLIENT_COUNTS:
            single = None
            for workers in WORKER_COUNTS:
                env = {"REDIS_URL": args.redis_url, "RUN_JOBS_IN_APP": "false"}
                with LiveBackend(Path(tmp) / f"{clients}-{workers}", url, workers=workers, env=env) as backend:
                    result = run_load(backend, Load(keys, clients=clients), args.seconds)
                answered += result.answered_ok
                single = single or result.rate
                errors = {status: count for status, count in sorted(result.statuses.items()) if status != 200}
                print(
                    f"{clients:>7}  {workers:>7}  {result.rate:>8,.0f}  {result.rate / single:>10.2f}x  "
                    f"{result.percentile(50):>7.1f}  {result.percentile(99):>7.1f}  "
                    f"{sum(errors.values())} {errors or ''}".rstrip()
                )
                print(f"{'':>18}{result.cpu_note(postgres=True)}; checks: {verify(url, answered)}")


if __name__ == "__main__":
    main()
