"""The Usage page's figures (app/services/usage.py): the rollup plus the ledger's tail always equal
the ledger, however often and however concurrently the rollup job runs; the breakdown's top ten
and "Other"; the CSV; each key's usage on the API Keys page."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs.queue import run_due_jobs
from app.models import Account, Job, LedgerEntry, UsageRollup
from app.services import api_keys, metering, usage
from tests.factories import grant, owner_and_account

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Account_:
    """An account with credits and two API keys, debited through the metering API's slow path."""

    def __init__(self, engine, email: str = "owner@example.com", timezone: str = "UTC"):
        self.engine = engine
        with Session(engine, expire_on_commit=False) as session:
            self.actor, account = owner_and_account(session, email=email)
            self.account_id = account.id
            account.timezone = timezone
            session.add(account)
            self.keys = {}
            for name in ("Production", "Staging"):
                row, secret = api_keys.create_key(session, self.actor, name)
                self.keys[name] = (row.id, secret)
            grant(session, account.id, 10_000_000, key=f"grant:{account.id}")
            session.commit()

    def use(self, cents: int, description: str = "", key: str = "Production", at: datetime = NOW) -> None:
        with Session(self.engine) as session:
            answer = metering.record_usage(
                session, api_key=self.keys[key][1], amount_cents=cents, description=description, now=at
            )
            assert answer.status_code == 200, answer.body
            session.commit()

    def ledger(self, first: date, last: date, timezone: str = "UTC") -> Counter:
        """The truth, straight from the ledger."""
        with Session(self.engine) as session:
            return _counted(usage._ledger_sums(session, self.account_id, timezone, 0, first=first, last=last))

    def shown(self, first: date, last: date, timezone: str = "UTC") -> Counter:
        with Session(self.engine) as session:
            return _counted(usage.usage_sums(session, self.account_id, timezone, first, last))

    def roll_up(self, batch: int | None = None) -> bool:
        with Session(self.engine) as session:
            return usage.roll_up(session, self.account_id, batch=batch)

    def rollup_rows(self) -> list[tuple]:
        with Session(self.engine) as session:
            rows = session.exec(select(UsageRollup).where(UsageRollup.account_id == self.account_id))
            return sorted((r.day, r.api_key_id, r.description, r.cents, r.calls) for r in rows)


def _counted(sums) -> Counter:
    """(day, key, description) -> (cents, calls), rows of the same key added up."""
    total: Counter = Counter()
    for day, key_id, text, cents, calls in sums:
        total[(day, key_id, text, "cents")] += cents
        total[(day, key_id, text, "calls")] += calls
    return +total


FIRST, LAST = date(2026, 3, 1), date(2026, 3, 31)


def test_rollup_plus_tail_equals_the_ledger_and_a_second_run_changes_nothing(engine):
    customer = Account_(engine)
    other = Account_(engine, email="other@example.com")
    for n in range(30):
        customer.use(n + 1, f"job {n % 4}", key="Production" if n % 3 else "Staging", at=NOW - timedelta(hours=7 * n))
        other.use(5, "elsewhere", at=NOW - timedelta(hours=n))
    truth = customer.ledger(FIRST, LAST)
    assert len({day for day, *_ in truth}) > 5
    assert customer.shown(FIRST, LAST) == truth  # nothing rolled up yet: all tail

    # Small batches: several runs, each saying whether more is left.
    runs = [customer.roll_up(batch=7)]
    while runs[-1]:
        runs.append(customer.roll_up(batch=7))
    assert len(runs) == 5
    rows = customer.rollup_rows()
    assert customer.shown(FIRST, LAST) == truth
    assert customer.roll_up() is False and customer.rollup_rows() == rows

    # New usage is shown at once (the tail), and rolled up by the next run exactly once.
    customer.use(1_000, "job 1", at=NOW)
    truth = customer.ledger(FIRST, LAST)
    assert customer.shown(FIRST, LAST) == truth
    customer.roll_up()
    customer.roll_up()
    assert customer.shown(FIRST, LAST) == truth
    assert sum(r[3] for r in customer.rollup_rows()) == sum(r[3] for r in rows) + 1_000
    # The other account's usage is never in this one's.
    assert {key for _, key, *_ in truth} <= {customer.keys["Production"][0], customer.keys["Staging"][0]}


def test_the_sweep_rolls_up_the_accounts_behind_and_schedules_the_next(engine, monkeypatch):
    monkeypatch.setattr(usage, "BATCH", 2)  # several runs for one account
    customer = Account_(engine)
    for _ in range(5):
        customer.use(50, "report", at=NOW)
    with Session(engine) as session:
        assert usage.accounts_behind(session) == [customer.account_id]
    assert run_due_jobs(engine) == 0
    with Session(engine) as session:
        usage.schedule_sweep(session, NOW - timedelta(minutes=1))
        session.commit()
    assert run_due_jobs(engine) == 1  # the sweep; the next one is a minute away
    with Session(engine) as session:
        assert usage.accounts_behind(session) == []
        pending = session.exec(select(Job).where(Job.status == "pending")).all()
        assert [job.kind for job in pending] == ["usage_rollup_sweep"]
    assert customer.rollup_rows() == [(NOW.date(), customer.keys["Production"][0], "report", 250, 5)]


def test_days_are_the_accounts_and_a_new_timezone_rolls_up_again(engine):
    customer = Account_(engine, timezone="America/New_York")
    late_evening = datetime(2026, 3, 10, 3, 30, tzinfo=UTC)  # March 9, 23:30 in New York
    customer.use(100, "night", at=late_evening)
    customer.roll_up()
    assert customer.rollup_rows()[0][0] == date(2026, 3, 9)
    with Session(engine) as session:
        session.exec(update(Account).where(Account.id == customer.account_id).values(timezone="Asia/Tokyo"))
        session.commit()
        # Until the job has rolled up again, the page reads the ledger in the new days.
        assert usage.usage_sums(session, customer.account_id, "Asia/Tokyo", FIRST, LAST)[0][0] == date(2026, 3, 10)
        assert usage.accounts_behind(session) == [customer.account_id]
    customer.roll_up()
    assert [row[0] for row in customer.rollup_rows()] == [date(2026, 3, 10)]
    assert customer.shown(FIRST, LAST, "Asia/Tokyo") == customer.ledger(FIRST, LAST, "Asia/Tokyo")


def test_a_days_descriptions_past_the_limit_are_summed_as_other(engine, monkeypatch):
    monkeypatch.setattr(usage, "MAX_DESCRIPTIONS_PER_DAY", 3)
    customer = Account_(engine)
    for n in range(6):
        customer.use(100 - n, f"call {n}", at=NOW)
    customer.roll_up()
    customer.use(50, "call 0", at=NOW)  # a kept description stays itself
    customer.use(7, "call 9", at=NOW)  # a new one past the limit is folded
    customer.roll_up()
    descriptions = {row[2]: row[3] for row in customer.rollup_rows()}
    assert descriptions == {"call 0": 150, "call 1": 99, "call 2": 98, usage.FOLDED: 97 + 96 + 95 + 7}
    with _session(engine) as session:
        view = usage.usage_view(session, customer.actor, by="description", now=NOW)
    assert [row.name for row in view.rows] == ["call 0", "call 1", "call 2", "Other"]
    assert view.rows[-1].amount == "$2.95"


def _session(engine) -> Session:
    return Session(engine, expire_on_commit=False)


def test_the_breakdown_is_the_top_ten_then_other():
    day = date(2026, 3, 1)
    sums = [(day, 1, f"d{n:02}", 100 + n, 1) for n in range(12)] + [(day + timedelta(days=1), 2, "d11", 50, 2)]
    names, totals, per_day = usage.breakdown(sums, "description", {})
    assert names == ["d11", "d10", "d09", "d08", "d07", "d06", "d05", "d04", "d03", "d02", "Other"]
    assert totals["d11"] == (161, 3) and totals["Other"] == (100 + 101, 2)
    assert per_day[day + timedelta(days=1)] == {"d11": (50, 2)}
    by_key, key_totals, _ = usage.breakdown(sums, "key", {1: "Production", 2: "Staging"})
    assert by_key == ["Production", "Staging"] and key_totals["Staging"] == (50, 2)


def test_the_page_and_its_csv(engine):
    customer = Account_(engine, timezone="Europe/Paris")
    customer.use(150, "=HYPERLINK(1)", at=NOW - timedelta(days=1))
    customer.use(250, "report", key="Staging", at=NOW)
    customer.use(100, "report", at=NOW - timedelta(days=40))  # outside the last 30 days
    customer.roll_up()
    customer.use(5, "report", at=NOW)  # the tail
    with _session(engine) as session:
        view = usage.usage_view(session, customer.actor, preset="30", by="key", now=NOW)
        assert (view.first, view.last, view.total_amount, view.total_calls) == (
            "2026-02-09",
            "2026-03-10",
            "$4.05",
            "3",
        )
        assert [(s["key"], s["name"]) for s in view.series] == [("s0", "Staging"), ("s1", "Production")]
        assert len(view.chart) == 30 and view.chart[-1] == {"day": "Mar 10", "s0": 2.5, "s1": 0.05}
        assert [(row.name, row.calls, row.amount, row.share) for row in view.rows] == [
            ("Staging", "1", "$2.50", "61.7%"),
            ("Production", "2", "$1.55", "38.3%"),
        ]
        assert [(row.day, row.amount) for row in view.days] == [("Mar 10, 2026", "$2.55"), ("Mar 9, 2026", "$1.50")]
        empty = usage.usage_view(
            session, customer.actor, preset="custom", date_from="2025-01-01", date_to="2025-01-31", now=NOW
        )
        assert empty.rows == [] and empty.days == [] and len(empty.chart) == 31
        text = usage.usage_csv(session, customer.actor, preset="7", now=NOW)
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["Day", "API key", "Description", "Calls", "Amount USD"],
        ["2026-03-09", "Production", "'=HYPERLINK(1)", "1", "1.50"],
        ["2026-03-10", "Staging", "report", "1", "2.50"],
        ["2026-03-10", "Production", "report", "1", "0.05"],
    ]


def test_a_bad_custom_range_is_refused_next_to_its_field(engine):
    customer = Account_(engine)
    with _session(engine) as session:
        for date_from, date_to, field in (
            ("", "2026-03-01", "date_from"),
            ("2026-03-05", "2026-03-01", "date_to"),
            ("2024-01-01", "2026-03-01", "date_from"),
        ):
            with pytest.raises(usage.ValidationFailed) as refused:
                usage.usage_view(session, customer.actor, preset="custom", date_from=date_from, date_to=date_to)
            assert refused.value.field == field


def test_each_keys_usage_today_and_this_month_on_the_api_keys_page(engine):
    customer = Account_(engine)
    customer.use(300, at=NOW)
    customer.use(200, key="Staging", at=NOW - timedelta(days=3))
    customer.roll_up()
    customer.use(1, at=NOW)
    with _session(engine) as session:
        rows = {
            row.name: (row.used_today, row.used_this_month) for row in api_keys.key_rows(session, customer.actor, NOW)
        }
    assert rows == {"Production": ("$3.01", "$3.01"), "Staging": ("$0.00", "$2.00")}


def test_concurrent_rollups_during_debits_never_double_count_on_postgres(pg_engine):
    """Rollup runs race each other and the debits; the rollup then holds each entry exactly once."""
    customer = Account_(pg_engine)
    errors: list[BaseException] = []

    def debits():
        for n in range(20):
            with Session(pg_engine) as session:
                key = customer.keys["Production" if n % 2 else "Staging"][1]
                metering.record_usage(session, api_key=key, amount_cents=1 + n % 5, description=f"job {n % 3}", now=NOW)
                # The entry's id is taken well before its commit: a run in between must not skip it.
                time.sleep(0.01)
                session.commit()

    writers = [threading.Thread(target=debits) for _ in range(2)]

    def roll_ups():
        try:
            while any(writer.is_alive() for writer in writers):
                customer.roll_up(batch=5)
        except BaseException as exc:  # reported below
            errors.append(exc)

    rollers = [threading.Thread(target=roll_ups) for _ in range(4)]
    for thread in writers + rollers:
        thread.start()
    for thread in writers + rollers:
        thread.join()
    assert not errors
    while customer.roll_up():
        pass
    with Session(pg_engine) as session:
        entries = session.exec(
            select(LedgerEntry).where(LedgerEntry.account_id == customer.account_id, LedgerEntry.source == "usage")
        ).all()
    assert len(entries) == 40
    rows = customer.rollup_rows()
    assert sum(r[4] for r in rows) == len(entries)
    assert sum(r[3] for r in rows) == -sum(e.amount_cents for e in entries)
    assert customer.shown(FIRST, LAST) == customer.ledger(FIRST, LAST)
