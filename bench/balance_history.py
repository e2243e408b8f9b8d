"""Balance History on a 1,000,000-entry account: does a deep keyset page cost what the first does?

Creates a throwaway PostgreSQL database, migrates it, bulk-loads the ledger with one INSERT ...
SELECT over generate_series, then times balance_history.page against the same query in raw SQL
(and OFFSET paging for contrast), and drops the database.

    .venv/bin/python bench/balance_history.py   # TEST_DATABASE_URL overrides the admin URL
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlmodel import Session

from app.db import make_engine
from app.migrations import upgrade_to_head
from app.services import balance_history
from app.services.accounts import create_account
from bench.common import throwaway_database, timed

ROWS = 1_000_000
OTHER_ROWS = 250_000  # a second, newer account, so the planner must pick the (account_id, id) index
DEEP = 900_000
PAGE = 25
REPEAT = 200

# Entry g of an account: every tenth a $25 purchase, the rest $1.50 usage; the running balance has a
# closed form, so balance_after_cents is exact without a window function.
LOAD = """
INSERT INTO ledger_entry (id, public_id, account_id, amount_cents, balance_after_cents, source,
                          description, idempotency_key, created_at)
SELECT :offset + g, 'txn_' || lpad((:offset + g)::text, 14, '0'), :account_id,
       CASE WHEN g % 10 = 1 THEN 2500 ELSE -150 END,
       2500 * ((g + 9) / 10) - 150 * (g - (g + 9) / 10),
       CASE WHEN g % 10 = 1 THEN 'purchase' ELSE 'usage' END,
       CASE WHEN g % 10 = 1 THEN 'Stripe Payment Intent pi_bench' || g || ' via Add Usage Credits'
            ELSE 'API usage' END,
       'bench-' || (:offset + g),
       timestamptz '2025-01-01 00:00:00+00' + (:offset + g) * interval '30 seconds'
FROM generate_series(1, :rows) AS g
"""
RAW_PAGE = """
SELECT id, public_id, account_id, amount_cents, balance_after_cents, source, description,
       idempotency_key, invoice_id, created_at
FROM ledger_entry WHERE account_id BETWEEN %s AND %s AND id < %s ORDER BY account_id DESC, id DESC LIMIT %s
"""
RAW_FIRST = RAW_PAGE.replace("AND id < %s ", "")
OFFSET_PAGE = RAW_FIRST.replace("LIMIT %s", "LIMIT %s OFFSET %s")


def main() -> None:
    with throwaway_database() as url:
        run(url)


def run(url: str) -> None:
    upgrade_to_head(url)
    engine = make_engine(url)
    started = time.perf_counter()
    with Session(engine) as session:
        account_id = create_account(session, name="Bench Inc").id
        other_id = create_account(session, name="Other Inc").id
        session.execute(text("SET LOCAL synchronous_commit = off"))
        session.execute(text(LOAD), {"account_id": account_id, "rows": ROWS, "offset": 0})
        session.execute(text(LOAD), {"account_id": other_id, "rows": OTHER_ROWS, "offset": ROWS})
        session.execute(
            text(
                "INSERT INTO credit_balance (account_id, balance_cents, overage_credit_line_cents, updated_at) "
                "SELECT account_id, SUM(amount_cents), 0, now() FROM ledger_entry GROUP BY account_id"
            )
        )
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('ledger_entry', 'id'), :last)"), {"last": ROWS + OTHER_ROWS}
        )
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE ledger_entry"))
    loaded = time.perf_counter() - started
    print(f"loaded {ROWS:,} ledger entries (+{OTHER_ROWS:,} of another account) in {loaded:.1f} s")

    deep_after = ROWS - DEEP + 1
    with Session(engine) as session:

        def service_page(after_id: int | None, sources: list[str] | None = None) -> None:
            found = balance_history.page(session, account_id, after_id=after_id, limit=PAGE, sources=sources)
            assert len(found.rows) == PAGE
            session.expunge_all()

        service_first = timed(lambda: service_page(None), REPEAT)
        service_deep = timed(lambda: service_page(deep_after), REPEAT)
        purchases_first = timed(lambda: service_page(None, ["purchase"]), REPEAT)
        purchases_deep = timed(lambda: service_page(deep_after, ["purchase"]), REPEAT)

    raw = engine.raw_connection()
    cursor = raw.cursor()

    def raw_page(after_id: int | None) -> None:
        if after_id is None:
            cursor.execute(RAW_FIRST, (account_id, account_id, PAGE + 1))
        else:
            cursor.execute(RAW_PAGE, (account_id, account_id, after_id, PAGE + 1))
        assert len(cursor.fetchall()) == PAGE + 1

    def offset_page(offset: int) -> None:
        cursor.execute(OFFSET_PAGE, (account_id, account_id, PAGE + 1, offset))
        assert len(cursor.fetchall()) == PAGE + 1

    raw_first = timed(lambda: raw_page(None), REPEAT)
    raw_deep = timed(lambda: raw_page(deep_after), REPEAT)
    offset_deep = timed(lambda: offset_page(DEEP), repeat=10)
    plans = []
    for sql, params in (
        (RAW_FIRST, (account_id, account_id, PAGE + 1)),
        (RAW_PAGE, (account_id, account_id, deep_after, PAGE + 1)),
    ):
        cursor.execute("EXPLAIN " + sql, params)
        plans.append(cursor.fetchall()[1][0].strip())
    raw.close()
    engine.dispose()

    print(f"page of {PAGE} rows, median of {REPEAT} runs (deep page = after {DEEP:,} newer rows)")
    print(
        f"  balance_history.page  first {service_first:7.3f} ms   deep {service_deep:7.3f} ms   "
        f"deep/first {service_deep / service_first:5.2f}"
    )
    print(
        f"  raw SQL (psycopg)     first {raw_first:7.3f} ms   deep {raw_deep:7.3f} ms   "
        f"deep/first {raw_deep / raw_first:5.2f}"
    )
    print(f"  service/raw           first {service_first / raw_first:5.2f}x     deep {service_deep / raw_deep:5.2f}x")
    print(
        f"  kind = purchase       first {purchases_first:7.3f} ms   deep {purchases_deep:7.3f} ms   "
        f"deep/first {purchases_deep / purchases_first:5.2f}"
    )
    print(f"  for contrast, OFFSET {DEEP:,}: {offset_deep:.1f} ms ({offset_deep / raw_first:,.0f}x the first page)")
    print(f"  plan, first page: {plans[0]}")
    print(f"  plan, deep page:  {plans[1]}")


if __name__ == "__main__":
    main()
