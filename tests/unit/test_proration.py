"""Proration of plan and seat changes: (new − old monthly total) × days left ÷ days in the UTC
calendar month, the day of the change included, rounded towards zero to whole cents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from app.services.plans import get_plan
from app.services.subscription import billing_period, prorate

PRO, BUSINESS = get_plan("pro"), get_plan("business")


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_an_upgrade_on_the_22nd_of_november_pays_9_of_30_days():
    # Basic (free) to Pro with its 5 included seats: $145.00 a month.
    proration = prorate(0, PRO.monthly_cents(5), at(2026, 11, 22))
    assert (proration.days_left, proration.days_total, proration.amount_cents) == (9, 30, 4_350)
    assert (proration.period_start, proration.period_end) == (date(2026, 11, 1), date(2026, 12, 1))


def test_a_downgrade_is_the_same_share_credited():
    # Business with 10 seats ($990) to Pro keeping the 10 seats ($290): $700 × 9/30.
    assert prorate(BUSINESS.monthly_cents(10), PRO.monthly_cents(10), at(2026, 11, 22)).amount_cents == -21_000


def test_fractions_of_a_cent_are_dropped_towards_zero_both_ways():
    # One more Pro seat ($29.00) on Feb 10, 2027: 19 of 28 days = 1,967.857… cents.
    more = prorate(PRO.monthly_cents(5), PRO.monthly_cents(6), at(2027, 2, 10))
    fewer = prorate(PRO.monthly_cents(6), PRO.monthly_cents(5), at(2027, 2, 10))
    assert (more.days_left, more.days_total) == (19, 28)
    assert (more.amount_cents, fewer.amount_cents) == (1_967, -1_967)


def test_the_first_day_settles_the_whole_month_and_the_last_day_one_day():
    first = prorate(PRO.monthly_cents(5), BUSINESS.monthly_cents(10), at(2026, 12, 1, 0))
    last = prorate(PRO.monthly_cents(5), BUSINESS.monthly_cents(10), at(2026, 12, 31, 23))
    assert (first.days_left, first.amount_cents) == (31, 84_500)
    assert (last.days_left, last.amount_cents) == (1, 84_500 // 31) == (1, 2_725)


def test_a_leap_february_has_29_days():
    proration = prorate(0, 2_900, at(2028, 2, 29))
    assert (proration.days_left, proration.days_total, proration.amount_cents) == (1, 29, 100)


def test_days_are_utc_days_whatever_the_offset_of_the_moment():
    # 00:30 on Dec 1 in Berlin is still Nov 30 in UTC: the last day of November's period.
    berlin = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert billing_period(berlin) == (date(2026, 11, 1), date(2026, 12, 1))
    assert prorate(0, 3_000, berlin).days_left == 1
    assert billing_period(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert billing_period(datetime(2027, 1, 1, tzinfo=UTC)) == (date(2027, 1, 1), date(2027, 2, 1))


def test_no_change_in_price_settles_nothing():
    assert prorate(14_500, 14_500, at(2026, 11, 22)).amount_cents == 0


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC))
monthly = st.integers(min_value=0, max_value=100_000_000)


@given(old=monthly, new=monthly, moment=moments)
def test_the_amount_is_the_exact_share_rounded_towards_zero(old, new, moment):
    proration = prorate(old, new, moment)
    exact_numerator = abs(new - old) * proration.days_left
    assert 28 <= proration.days_total <= 31 and 1 <= proration.days_left <= proration.days_total
    # |amount| ≤ exact share < |amount| + 1 cent, and the sign is the direction of the change.
    assert abs(proration.amount_cents) * proration.days_total <= exact_numerator
    assert exact_numerator < (abs(proration.amount_cents) + 1) * proration.days_total
    assert abs(proration.amount_cents) <= abs(new - old)
    assert proration.amount_cents == 0 or (proration.amount_cents > 0) == (new > old)


@given(old=monthly, new=monthly, moment=moments)
def test_a_change_and_its_reverse_on_the_same_day_cancel_out(old, new, moment):
    assert prorate(old, new, moment).amount_cents + prorate(new, old, moment).amount_cents == 0


@given(old=monthly, new=monthly, moment=moments)
def test_a_later_day_never_settles_more(old, new, moment):
    later = moment + timedelta(days=1)
    if billing_period(later) == billing_period(moment):
        assert abs(prorate(old, new, later).amount_cents) <= abs(prorate(old, new, moment).amount_cents)


def test_seats_added_one_at_a_time_cost_what_removing_them_at_once_credits():
    """6 → 106 → 6 Pro seats on Dec 4, 2026 (28 of 31 days left): rounding each change alone
    charged 100 × $26.19 and credited $2,619.35, 35 ¢ more."""
    dec_4, settled, charged = at(2026, 12, 4), 0, 0
    for seats in range(6, 106):
        proration = prorate(PRO.monthly_cents(seats), PRO.monthly_cents(seats + 1), dec_4, settled)
        charged += proration.amount_cents
        settled += (PRO.monthly_cents(seats + 1) - PRO.monthly_cents(seats)) * proration.days_left
    removed = prorate(PRO.monthly_cents(106), PRO.monthly_cents(6), dec_4, settled)
    assert charged == -removed.amount_cents == 261_935


@given(start=monthly, steps=st.lists(st.tuples(monthly, st.integers(min_value=1, max_value=30)), max_size=12))
def test_the_changes_of_a_period_add_up_to_its_exact_total_rounded_towards_zero(start, steps):
    settled, total, current = 0, 0, start
    for new, day in sorted(steps, key=lambda step: step[1]):
        proration = prorate(current, new, at(2026, 11, day), settled)
        settled += (new - current) * proration.days_left
        total += proration.amount_cents
        current = new
    assert total == (abs(settled) // 30) * (1 if settled >= 0 else -1)


@given(start=monthly, totals=st.lists(monthly, min_size=1, max_size=12), moment=moments)
def test_changes_made_and_undone_on_one_day_settle_nothing(start, totals, moment):
    settled, total = 0, 0
    for old, new in zip([start, *totals], [*totals, start], strict=True):
        proration = prorate(old, new, moment, settled)
        settled += (new - old) * proration.days_left
        total += proration.amount_cents
    assert settled == total == 0
