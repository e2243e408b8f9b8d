"""Upcoming payments: the next invoice's date, amount and lines, as the period close would issue
them; the preview follows seat changes and equals what the close then bills."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from app.errors import PermissionDenied
from app.models import InvoiceLine
from app.services import invoices, ledger, subscription, upcoming
from app.services.money import format_usd
from app.services.overview import billing_settings
from tests.factories import actor_for, grant, make_account, make_user, owner_and_account
from tests.stripe_fixtures import save_card

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)
DEC_1 = date(2026, 12, 1)


def _use(session, account_id: int, cents: int, when: datetime, key: str) -> None:
    ledger.debit(
        session, account_id=account_id, amount_cents=cents, description="API usage", idempotency_key=key, now=when
    )


def _preview(payment: upcoming.NextPayment) -> list[tuple[str, str]]:
    return [(line.description, line.amount) for line in payment.lines]


def test_a_paid_plan_expects_seats_times_rate_on_the_first_of_next_month(session):
    account = make_account(session)
    account.plan_code, account.seats_purchased = "pro", 7
    session.add(account)
    session.commit()

    payment = upcoming.next_payment(session, account.id, now=NOW)
    assert (payment.issued_on, payment.total, payment.nothing_due) == ("Dec 1, 2026", "$203.00", False)
    assert _preview(payment) == [("Pro plan seats, Dec 1 – Dec 31, 2026", "$203.00")]
    assert "Due 14 days after the invoice date" in payment.how_paid


def test_overage_so_far_is_added_and_prepaid_usage_is_shown_as_paid(session):
    account = make_account(session)
    account.plan_code = "pro"
    session.add(account)
    ledger.set_overage_credit_line(session, account.id, 5_000)
    grant(session, account.id, 1_000, key="g", now=NOW - timedelta(days=10))
    _use(session, account.id, 1_600, NOW - timedelta(days=2), "u")
    session.commit()

    payment = upcoming.next_payment(session, account.id, now=NOW)
    assert _preview(payment) == [
        ("Usage through Nov 30, 2026", "$16.00"),
        ("Paid from your usage credits", "-$10.00"),
        ("Pro plan seats, Dec 1 – Dec 31, 2026", "$145.00"),
    ]
    assert payment.total == "$151.00"


def test_the_preview_is_what_the_period_close_then_bills(session):
    account = make_account(session)
    account.plan_code, account.seats_purchased = "business", 12
    session.add(account)
    ledger.set_overage_credit_line(session, account.id, 50_000)
    _use(session, account.id, 4_321, NOW - timedelta(days=1), "u1")
    session.commit()

    preview = upcoming.next_payment(session, account.id, now=NOW)
    invoice = invoices.close_period(session, account.id, DEC_1, now=datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    session.commit()
    billed = session.exec(
        select(InvoiceLine.description, InvoiceLine.amount_cents)
        .where(InvoiceLine.invoice_id == invoice.id)
        .order_by(InvoiceLine.position)
    ).all()
    assert [(d, format_usd(c)) for d, c in billed] == _preview(preview)
    assert invoice.total_cents == preview.total_cents


def test_basic_with_no_usage_has_nothing_due(session):
    account = make_account(session)
    session.commit()
    payment = upcoming.next_payment(session, account.id, now=NOW)
    assert (payment.nothing_due, payment.lines, payment.issued_on) == (True, [], "Dec 1, 2026")


def test_the_date_is_the_day_of_the_accounts_timezone(session):
    account = make_account(session)
    account.timezone = "America/Los_Angeles"
    session.add(account)
    session.commit()
    # Midnight UTC on Dec 1 is still Nov 30 in California.
    assert upcoming.next_payment(session, account.id, now=NOW).issued_on == "Nov 30, 2026"


def test_custom_priced_accounts_are_told_they_are_invoiced(session):
    account = make_account(session)
    account.plan_code = "custom"
    session.add(account)
    billing_settings(session, account.id).invoice_priced = True
    ledger.set_overage_credit_line(session, account.id, 500_000)
    _use(session, account.id, 9_999, NOW - timedelta(hours=3), "u")
    session.commit()
    payment = upcoming.next_payment(session, account.id, now=NOW)
    assert payment.total == "$99.99"
    assert payment.how_paid == "Invoiced; due 30 days after the invoice date."


def test_the_expected_amount_follows_a_seat_change(session, localstripe):
    actor, account = owner_and_account(session)
    save_card(session, account, "pm_card_visa")
    account.plan_code, account.seats_purchased = "pro", 5
    session.add(account)
    session.commit()
    assert upcoming.for_plan(session, actor, now=NOW).total == "$145.00"
    assert "Visa •••• 4242" in upcoming.for_plan(session, actor, now=NOW).how_paid

    result = subscription.change_seats(session, actor, seats_text="7", request_key="more-seats", now=NOW)
    session.commit()
    assert result.status == "applied"
    assert upcoming.for_plan(session, actor, now=NOW).total == "$203.00"
    assert upcoming.for_billing(session, actor, now=NOW).total == "$203.00"


def test_a_member_sees_no_upcoming_payment(session):
    account = make_account(session)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()
    with pytest.raises(PermissionDenied):
        upcoming.for_billing(session, member)
    with pytest.raises(PermissionDenied):
        upcoming.for_plan(session, member)
