"""The limits a debit enforces and the background work it starts, straight on the ledger: the
daily budget per UTC day, each spend notification once a day, one auto recharge in flight."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlmodel import select

from app.models import CreditBalance, Job, LedgerEntry
from app.services import ledger
from app.services.ledger import DailyBudgetExceeded, InsufficientCredits
from app.services.overview import overview
from tests.factories import grant, make_account

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _funded_account(session, cents=10_000, **limits):
    account = make_account(session, "Limits Inc")
    grant(session, account.id, cents, key=f"g{account.id}")
    if limits:
        session.exec(update(CreditBalance).where(CreditBalance.account_id == account.id).values(**limits))
    return account


def _use(session, account, cents, key, now=NOON):
    return ledger.debit_usage(
        session, account_id=account.id, amount_cents=cents, idempotency_key=f"{account.id}:{key}", now=now
    )


def _jobs(session, kind):
    return [json.loads(job.payload) for job in session.exec(select(Job).where(Job.kind == kind).order_by(Job.id))]


def test_the_budget_is_a_cap_until_midnight_utc(session):
    account = _funded_account(session, daily_budget_cents=100)
    _, after = _use(session, account, 60, "a")
    assert (after.used_today_cents, after.available_cents) == (60, 40)
    with pytest.raises(DailyBudgetExceeded) as refused:
        _use(session, account, 41, "b")  # would take today's usage to $1.01
    assert refused.value.retry_after_seconds == 12 * 3600
    assert refused.value.message.startswith("This call would take today's usage past the daily budget: $0.40 of $1.00")
    _, after = _use(session, account, 40, "c")  # exactly what is left
    assert (after.used_today_cents, after.available_cents) == (100, 0)
    with pytest.raises(DailyBudgetExceeded):
        _use(session, account, 1, "d")
    assert ledger.balance_of(session, account.id) == ledger.ledger_sum(session, account.id) == 10_000 - 100

    _, next_day = _use(session, account, 30, "e", now=NOON + timedelta(days=1))
    assert next_day.used_today_cents == 30


def test_a_large_call_with_little_budget_left_is_refused_and_moves_nothing(session):
    account = _funded_account(session, cents=1_000_000, daily_budget_cents=200)
    _use(session, account, 120, "a")
    entries_before = len(session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account.id)).all())
    with pytest.raises(DailyBudgetExceeded):
        _use(session, account, 10_000, "b")  # $100 with $0.80 of a $2 budget left
    row = session.get(CreditBalance, account.id, populate_existing=True)
    assert (row.balance_cents, row.used_today_cents) == (1_000_000 - 120, 120)
    assert len(session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account.id)).all()) == entries_before
    assert ledger.balance_of(session, account.id) == ledger.ledger_sum(session, account.id)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    balance=st.integers(1, 5_000),
    line=st.integers(0, 2_000),
    budget=st.none() | st.integers(1, 5_000),
    used=st.integers(0, 6_000),
)
def test_available_cents_is_what_a_call_may_spend(session, balance, line, budget, used):
    """The Overview's (and GET /balance's) available_cents: a call of that much passes, one cent more is refused."""
    account = _funded_account(session, cents=balance, daily_budget_cents=budget, overage_credit_line_cents=line)
    session.exec(
        update(CreditBalance)
        .where(CreditBalance.account_id == account.id)
        .values(usage_day=NOON.date(), used_today_cents=used)
    )
    available = overview(session, account.id, NOON).available_to_use
    with pytest.raises((DailyBudgetExceeded, InsufficientCredits)):
        with session.begin_nested():
            _use(session, account, available + 1, "over")
    if available > 0:
        _, after = _use(session, account, available, "all")
        assert after.available_cents == 0 == overview(session, account.id, NOON).available_to_use


def test_a_budget_refusal_is_reported_before_a_short_balance(session):
    account = _funded_account(session, cents=50, daily_budget_cents=40)
    _use(session, account, 40, "a")
    with pytest.raises(DailyBudgetExceeded):
        _use(session, account, 500, "b")
    session.exec(update(CreditBalance).where(CreditBalance.account_id == account.id).values(daily_budget_cents=None))
    with pytest.raises(InsufficientCredits):
        _use(session, account, 500, "c")


def test_other_debits_neither_count_towards_nor_stop_at_the_budget(session):
    account = _funded_account(session, daily_budget_cents=10)
    _use(session, account, 10, "a")
    ledger.debit(session, account_id=account.id, amount_cents=500, source="adjustment", idempotency_key="adj", now=NOON)
    assert ledger.balance_of(session, account.id) == 10_000 - 510


def test_each_spend_notification_is_queued_once_per_utc_day(session):
    account = _funded_account(session, daily_notify_threshold_cents=50, daily_budget_cents=100)
    _use(session, account, 30, "a")
    assert _jobs(session, "spend_notification") == []
    _use(session, account, 30, "b")
    _use(session, account, 10, "c")
    assert [(job["kind"], job["used_cents"], job["line_cents"]) for job in _jobs(session, "spend_notification")] == [
        ("threshold", 60, 50)
    ]
    _use(session, account, 30, "d")  # to the budget exactly
    assert [job["kind"] for job in _jobs(session, "spend_notification")] == ["threshold", "budget"]

    _use(session, account, 80, "e", now=NOON + timedelta(days=1))
    tomorrow = (NOON + timedelta(days=1)).date().isoformat()
    assert [(job["kind"], job["day"]) for job in _jobs(session, "spend_notification")][2:] == [("threshold", tomorrow)]


def test_the_first_refusal_of_the_day_starts_the_budget_notification(session):
    account = _funded_account(session, daily_budget_cents=100)
    _use(session, account, 70, "a")
    for key in ("b", "c"):
        with pytest.raises(DailyBudgetExceeded):
            _use(session, account, 50, key)
    assert [(job["kind"], job["used_cents"], job["line_cents"]) for job in _jobs(session, "spend_notification")] == [
        ("budget", 70, 100)
    ]


def test_one_recharge_is_in_flight_however_many_debits_go_below_the_threshold(session):
    account = _funded_account(session, cents=1_000, recharge_threshold_cents=500)
    _use(session, account, 400, "a")
    assert _jobs(session, "auto_recharge") == []
    _use(session, account, 100, "b")  # to the threshold: due
    _use(session, account, 100, "c")
    assert _jobs(session, "auto_recharge") == [{"account_id": account.id, "seq": 1}]
    row = session.get(CreditBalance, account.id)
    session.refresh(row)
    assert (row.recharge_in_flight, row.recharge_seq) == (True, 1)

    session.exec(update(CreditBalance).where(CreditBalance.account_id == account.id).values(recharge_in_flight=False))
    _use(session, account, 1, "d")
    assert [job["seq"] for job in _jobs(session, "auto_recharge")] == [1, 2]


def test_a_disarmed_recharge_never_starts(session):
    account = _funded_account(session, cents=100)
    _use(session, account, 100, "a")
    assert not ledger.start_recharge_if_due(session, account.id)
    assert _jobs(session, "auto_recharge") == []
