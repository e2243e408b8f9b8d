"""The Usage page at 10,000,000 ledger rows: 90 days read from the daily rollup plus the ledger's
tail, against the same figures summed straight from the ledger.

Creates a throwaway PostgreSQL database, migrates it, bulk-loads 10,000,000 usage entries (one
INSERT ... SELECT over generate_series: a year of one account's calls, 5 API keys, 30
descriptions, plus another account's), rolls them up with the rollup job's own function, adds a
tail of entries the job has not seen yet (a minute of calls, 10,000 of the account's among as many
of the other's), times the
page's read and the ledger's, and drops the database.

    .venv/bin/python bench/usage_rollup.py   # TEST_DATABASE_URL overrides the admin URL
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade_to_head
from app.models import ApiKey
from app.services import usage
from app.services.accounts import create_account
from bench.common import throwaway_database, timed

ROWS = 9_000_000
OTHER_ROWS = 1_000_000
TAIL = 10_000
DAYS = 90
REPEAT = 30

# Entry g of an account: one call every `step` seconds back from `newest`, on key g % 5, with one
# of 30 descriptions.
LOAD = """
INSERT INTO ledger_entry (public_id, account_id, amount_cents, balance_after_cents, source, description,
                          idempotency_key, created_at, api_key_id)
SELECT 'txn_' || :tag || g, :account_id, -(1 + g % 7), 0, 'usage', 'Job ' || (g % 30),
       'bench-' || :tag || g, CAST(:newest AS timestamptz) - g * make_interval(secs => :step),
       (CAST(:keys AS bigint[]))[1 + g % 5]
FROM generate_series(1, :rows) AS g
ORDER BY g DESC
"""
# The tail: the last minute's calls of the measured account, interleaved with as many of the
# other account's, as they arrive.
TAIL_LOAD = """
INSERT INTO ledger_entry (public_id, account_id, amount_cents, balance_after_cents, source, description,
                          idempotency_key, created_at, api_key_id)
SELECT 'txn_t' || g, CASE WHEN g % 2 = 0 THEN :account_id ELSE :other_id END, -(1 + g % 7), 0, 'usage',
       'Job ' || (g / 2 % 30), 'bench-t' || g, CAST(:newest AS timestamptz) - (:rows - g) * make_interval(secs => :step),
       CASE WHEN g % 2 = 0 THEN (CAST(:keys AS bigint[]))[1 + g / 2 % 5] ELSE (CAST(:other_keys AS bigint[]))[1] END
FROM generate_series(1, :rows) AS g
"""


def main() -> None:
    with throwaway_database() as url:
        run(url)


def _keys(session: Session, account_id: int, tag: str) -> list[int]:
    keys = [
        ApiKey(account_id=account_id, name=f"Key {n}", prefix=f"ld_{tag}{n}", secret_hash=f"{tag}{n}".ljust(64, "0"))
        for n in range(5)
    ]
    session.add_all(keys)
    session.flush()
    return [key.id or 0 for key in keys]


def _load(session: Session, account_id: int, tag: str, rows: int, newest: datetime, step: float) -> list[int]:
    keys = _keys(session, account_id, tag)
    parameters = {"tag": tag, "account_id": account_id, "rows": rows, "newest": newest, "step": step, "keys": keys}
    session.execute(text(LOAD), parameters)
    return keys


def run(url: str) -> None:
    upgrade_to_head(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with Session(engine) as session:
        account_id = create_account(session, name="Bench Inc").id
        other_id = create_account(session, name="Other Inc").id
        assert account_id is not None and other_id is not None
        session.execute(text("SET LOCAL synchronous_commit = off"))
        # The measured account: a year of calls (one every 3.5 s), the newest a minute ago.
        other_keys = _load(session, other_id, "b", OTHER_ROWS, now - timedelta(minutes=1), 365 * 86400 / OTHER_ROWS)
        keys = _load(session, account_id, "a", ROWS, now - timedelta(minutes=1), 365 * 86400 / ROWS)
        session.execute(
            text(
                "INSERT INTO credit_balance (account_id, balance_cents, overage_credit_line_cents, updated_at) "
                "SELECT account_id, SUM(amount_cents), 0, now() FROM ledger_entry GROUP BY account_id"
            )
        )
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ledger_entry"))
    loaded = time.perf_counter() - started
    print(f"loaded {ROWS + OTHER_ROWS:,} ledger entries ({ROWS:,} of the measured account) in {loaded:.0f} s")

    started = time.perf_counter()
    runs = 0
    for account in (account_id, other_id):
        with Session(engine) as session:
            while usage.roll_up(session, account):
                runs += 1
            runs += 1
    rolled = time.perf_counter() - started
    with Session(engine) as session:
        rollup_rows = session.execute(text("SELECT count(*) FROM usage_rollup")).scalar_one()
        # The tail: entries after the watermark, within the last minute.
        session.execute(
            text(TAIL_LOAD),
            {
                "account_id": account_id,
                "other_id": other_id,
                "rows": 2 * TAIL,
                "newest": now,
                "step": 60 / (2 * TAIL),
                "keys": keys,
                "other_keys": other_keys,
            },
        )
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE ledger_entry"))
    print(
        f"rolled up by {runs} runs of the job in {rolled:.0f} s "
        f"({(ROWS + OTHER_ROWS) / rolled:,.0f} entries/s): {rollup_rows:,} rollup rows"
    )

    timezone = "UTC"
    last = now.date()
    first = last - timedelta(days=DAYS - 1)
    with Session(engine) as session:

        def page_read() -> None:
            sums = usage.usage_sums(session, account_id, timezone, first, last)
            assert len({day for day, *_ in sums}) == DAYS

        def ledger_read() -> None:
            sums = usage._ledger_sums(session, account_id, timezone, 0, first=first, last=last)
            assert len({day for day, *_ in sums}) == DAYS

        tail_only = usage._ledger_sums(session, account_id, timezone, usage.watermark(session, account_id))
        assert sum(calls for *_, calls in tail_only) == TAIL
        assert _same_totals(session, account_id, timezone, first, last)
        page = timed(page_read, REPEAT)
        ledger = timed(ledger_read, repeat=3)

    print(f"{DAYS} days of the account's usage ({DAYS * ROWS / 365:,.0f} entries + {TAIL:,} in the tail)")
    print(f"  rollup + tail (usage.usage_sums)  {page:8.1f} ms   (median of {REPEAT})")
    print(f"  straight from the ledger           {ledger:8.1f} ms   (median of 3)")
    print(f"  rollup + tail / ledger             {page / ledger:8.4f}   ({ledger / page:,.0f}x faster)")
    engine.dispose()


def _same_totals(session: Session, account_id: int, timezone: str, first, last) -> bool:
    """The page's read adds up to what the ledger says (a day's key and description may be in a
    rollup row and in the tail, so sums are compared)."""
    shown = usage.usage_sums(session, account_id, timezone, first, last)
    truth = usage._ledger_sums(session, account_id, timezone, 0, first=first, last=last)
    return sum(s[3] for s in shown) == sum(s[3] for s in truth) and sum(s[4] for s in shown) == sum(s[4] for s in truth)


if __name__ == "__main__":
    main()
