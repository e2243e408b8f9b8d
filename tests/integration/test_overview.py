from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import func, select

from app.demo import usage_credits
from app.models import CreditBalance, LedgerEntry
from app.services import ledger
from app.services.overview import billing_settings, daily_usage, overview, runs_out_on, usage_on_day
from tests.factories import make_account

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _account(session, plan_code="basic"):
    account = make_account(session)
    account.plan_code = plan_code
    session.add(account)
    session.flush()
    return account


def _credit(session, account, cents, key, at=NOW, source="purchase"):
    return ledger.credit(
        session, account_id=account.id, amount_cents=cents, source=source, description="", idempotency_key=key, now=at
    )


def _use(session, account, cents, key, at=NOW, source="usage"):
    return ledger.debit(session, account_id=account.id, amount_cents=cents, source=source, idempotency_key=key, now=at)


def test_overview_figures(session):
    account = _account(session, "pro")
    _credit(session, account, 5000, "trial", NOW - timedelta(days=20), source="grant")
    _credit(session, account, 10000, "topup", NOW - timedelta(days=10))
    billed = _use(session, account, 400, "u0", NOW - timedelta(days=9))
    _use(session, account, 300, "u1", NOW - timedelta(days=1))
    _use(session, account, 200, "u2", NOW.replace(hour=0, minute=0))
    _use(session, account, 100, "u3", NOW)
    _use(session, account, 50, "refund", NOW, source="refund")
    billed.invoice_id = 7
    session.add(billed)
    session.flush()

    figures = overview(session, account.id, now=NOW)
    assert figures.total_credits == 15000
    assert figures.earlier_usage == 400
    assert figures.usage_this_period == 300 + 200 + 100 + 50
    assert figures.remaining_credits == 15000 - 1050 == ledger.ledger_sum(session, account.id)
    # The card reconciles: Total − earlier periods' usage − this period's = Remaining.
    assert figures.total_credits - figures.earlier_usage - figures.usage_this_period == figures.remaining_credits
    assert figures.overage_protection == 5000
    assert figures.used_today == 300
    assert figures.daily_budget is None
    assert figures.available_to_use == 13950 + 5000
    session.commit()


def test_the_daily_budget_in_force_caps_what_is_available(session):
    account = _account(session)
    _credit(session, account, 10000, "topup")
    _use(session, account, 300, "u1")
    assert overview(session, account.id, now=NOW).available_to_use == 9700
    session.exec(update(CreditBalance).where(CreditBalance.account_id == account.id).values(daily_budget_cents=1000))
    figures = overview(session, account.id, now=NOW)
    assert (figures.daily_budget, figures.used_today, figures.available_to_use) == (1000, 300, 700)
    _use(session, account, 700, "u2")  # exactly what the budget leaves
    assert overview(session, account.id, now=NOW).available_to_use == 0
    # A new UTC day starts a new budget.
    assert overview(session, account.id, now=NOW + timedelta(days=1)).available_to_use == 1000
    session.commit()


def test_available_never_goes_below_zero(session):
    account = _account(session, "pro")
    _use(session, account, 4000, "u1")
    ledger.set_overage_credit_line(session, account.id, 1000)
    figures = overview(session, account.id, now=NOW)
    assert (figures.remaining_credits, figures.overage_protection, figures.available_to_use) == (-4000, 1000, 0)


def test_a_new_account_shows_zeros(session):
    account = _account(session)
    figures = overview(session, account.id, now=NOW)
    assert (figures.total_credits, figures.usage_this_period, figures.remaining_credits) == (0, 0, 0)
    assert (figures.overage_protection, figures.used_today, figures.available_to_use) == (0, 0, 0)
    assert runs_out_on(session, account.id, now=NOW) is None


def test_billing_settings_is_created_once_with_the_plan_pricing(session):
    custom, basic = _account(session, "custom"), _account(session)
    assert billing_settings(session, custom.id).invoice_priced is True
    assert billing_settings(session, basic.id).invoice_priced is False
    assert billing_settings(session, custom.id) is billing_settings(session, custom.id)
    session.commit()


def test_days_are_utc_days(session):
    account = _account(session)
    _credit(session, account, 10000, "topup", NOW - timedelta(days=40))
    midnight = datetime(2026, 3, 9, tzinfo=UTC)
    _use(session, account, 1, "before", midnight - timedelta(microseconds=1))
    _use(session, account, 10, "at", midnight)
    _use(session, account, 100, "late", midnight + timedelta(hours=23, minutes=59))
    _use(session, account, 1000, "old", NOW - timedelta(days=30))
    _use(session, account, 5, "not-usage", midnight, source="adjustment")

    assert usage_on_day(session, account.id, date(2026, 3, 8)) == 1
    assert usage_on_day(session, account.id, date(2026, 3, 9)) == 110
    days = daily_usage(session, account.id, days=30, now=NOW)
    assert len(days) == 30 and days[0][0] == date(2026, 2, 9) and days[-1] == (date(2026, 3, 10), 0)
    assert dict(days)[date(2026, 3, 8)] == 1 and dict(days)[date(2026, 3, 9)] == 110
    assert sum(cents for _, cents in days) == 111
    assert dict(daily_usage(session, account.id, days=31, now=NOW))[date(2026, 2, 8)] == 1000


def test_runs_out_on_uses_the_average_of_the_last_14_days(session):
    account = _account(session)
    _credit(session, account, 2400, "topup", NOW - timedelta(days=20))
    _use(session, account, 1400, "u1", NOW - timedelta(days=13))
    # Left 1000 at 100 a day: ten days.
    assert runs_out_on(session, account.id, now=NOW) == date(2026, 3, 20)
    ledger.set_overage_credit_line(session, account.id, 500)
    assert runs_out_on(session, account.id, now=NOW) == date(2026, 3, 25)
    _use(session, account, 1500, "u2", NOW)
    assert runs_out_on(session, account.id, now=NOW) == date(2026, 3, 10)
    # Usage older than the window no longer counts.
    assert runs_out_on(session, account.id, now=NOW + timedelta(days=15)) is None


def test_demo_seed_leaves_a_positive_consistent_balance_and_can_run_twice(session):
    account = _account(session)
    usage_credits.seed(session, account, NOW)
    session.commit()
    count = session.exec(select(func.count()).select_from(LedgerEntry)).one()
    balance = ledger.balance_of(session, account.id)
    assert balance > 0 and balance == ledger.ledger_sum(session, account.id)
    assert count > 30 + 4
    sources = set(session.exec(select(LedgerEntry.source)).all())
    assert sources == {"grant", "purchase", "usage"}
    assert sum(1 for _, cents in daily_usage(session, account.id, now=NOW) if cents > 0) == 30

    usage_credits.seed(session, account, NOW + timedelta(hours=5))
    session.commit()
    assert session.exec(select(func.count()).select_from(LedgerEntry)).one() == count
    assert ledger.balance_of(session, account.id) == balance
