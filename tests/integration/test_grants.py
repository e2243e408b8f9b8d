"""Credit grants (app.services.grants): an operator's grant with an expiry and a priority is
drawn before purchased credits, the Overview, Balance History and the balance API show it, what
is left expires exactly once (across a restart and with two workers at once), a take-back is not
expired again, the period's invoice says what promotional credits paid, and bad input at the
grant changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.errors import ValidationFailed
from app.jobs import handlers  # noqa: F401  registers the grants' job handlers
from app.jobs.queue import run_due_jobs
from app.models import Account, CreditGrant, GrantDraw, InvoiceLine, Job, LedgerEntry
from app.services import api_keys, balance_history, billing_overview, grants, invoices, ledger, metering
from app.services.operator import accounts, staff
from tests.factories import owner_and_account

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BY = staff.Author(name="Olga Ops", email="ops@ledgerdesk.example")


def _grant(session, account, cents, key, *, expires_at=None, priority=None, now=NOW) -> LedgerEntry:
    return accounts.grant_credits(
        session,
        BY,
        account.public_id,
        amount_cents=cents,
        reason="Winter promotion",
        request_key=key,
        expires_at=expires_at,
        priority=priority,
        now=now,
    )


def _purchase(session, account, cents, key, now=NOW) -> None:
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=cents,
        source="purchase",
        description="Top-up",
        idempotency_key=key,
        now=now,
    )


def _use(session, account, cents, key, now) -> None:
    ledger.debit_usage(session, account_id=account.id, amount_cents=cents, idempotency_key=key, now=now)


def _expired_entries(session, account) -> list[LedgerEntry]:
    return list(
        session.exec(
            select(LedgerEntry).where(LedgerEntry.account_id == account.id, LedgerEntry.source == "expired")
        ).all()
    )


def test_grants_are_drawn_soonest_expiry_first_before_purchases_and_shown_where_the_customer_looks(session):
    actor, account = owner_and_account(session)
    account.timezone = "America/New_York"
    session.add(account)
    _purchase(session, account, 10_000, "p1")
    later = _grant(session, account, 2_000, "g-late", expires_at=NOW + timedelta(days=60), priority=9)
    soon = _grant(session, account, 1_500, "g-soon", expires_at=NOW + timedelta(days=20))
    _, key = api_keys.create_key(session, actor, "Prod")
    for number in range(4):
        _use(session, account, 500, f"u{number}", NOW + timedelta(hours=number + 1))
    session.commit()

    grants.upkeep(session, NOW + timedelta(hours=5))
    session.commit()

    by_entry = {g.ledger_entry_id: g for g in session.exec(select(CreditGrant)).all()}
    assert (by_entry[soon.id].remaining_cents, by_entry[later.id].remaining_cents) == (0, 1_500)
    assert sum(d.amount_cents for d in session.exec(select(GrantDraw)).all()) == 2_000
    assert ledger.balance_of(session, account.id) == 10_000 + 3_500 - 2_000  # purchased credits untouched

    view = billing_overview.overview_view(session, actor, NOW + timedelta(hours=5))
    assert view.live.expiring_soon == ""  # the soonest grant is used up; the other expires in 60 days
    in_45_days = NOW + timedelta(days=45)
    expiring = (
        "Expiring soon: $15.00 of promotional credits on May 9, 2026 at 08:00 EDT "
        "(they are used before purchased credits)."
    )
    assert billing_overview.overview_view(session, actor, in_45_days).live.expiring_soon == expiring
    assert billing_overview.live_figures(session, actor, in_45_days).expiring_soon == expiring
    answer = metering.balance(session, api_key=key, now=NOW + timedelta(hours=5))
    assert answer.body["next_expiry"] == {"amount_cents": 1_500, "expires_at": "2026-05-09T12:00:00Z"}
    history = balance_history.history_page(session, actor, kind="adjustment")
    assert [row.description for row in history.rows] == [
        "Adjustment by Olga Ops: Winter promotion (grant, expires 2026-03-30 08:00 EDT)",
        "Adjustment by Olga Ops: Winter promotion (grant, expires 2026-05-09 08:00 EDT)",
    ]


def test_what_is_left_expires_once_across_a_restart_and_is_neither_usage_nor_credit(engine):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session)
        _purchase(session, account, 1_000, "p1")
        _grant(session, account, 800, "g1", expires_at=NOW + timedelta(days=3))
        _use(session, account, 300, "u1", NOW + timedelta(days=1))
        session.commit()
    after = NOW + timedelta(days=3, seconds=1)

    assert run_due_jobs(engine, now=lambda: after) >= 1
    # A worker that died after the commit but before marking the job done: the job runs again.
    with Session(engine) as session:
        session.exec(update(Job).where(col(Job.kind) == "expire_grant").values(status="pending", locked_until=None))
        session.commit()
    run_due_jobs(engine, now=lambda: after + timedelta(minutes=5))
    with Session(engine, expire_on_commit=False) as session:
        grants.upkeep(session, after + timedelta(minutes=6))
        session.commit()

        [expired] = _expired_entries(session, account)
        assert expired.amount_cents == -500 and expired.idempotency_key.startswith("grant_expired:grt_")
        assert (
            ledger.balance_of(session, account.id) == 1_000 + 800 - 300 - 500 == ledger.ledger_sum(session, account.id)
        )
        figures = billing_overview.overview_view(session, actor, after).live
        assert (figures.total_credits, figures.usage_this_period, figures.remaining_credits) == (
            "$13.00",
            "$3.00",
            "$10.00",
        )
        [row] = balance_history.history_page(session, actor, kind="expired").rows
        assert row.amount == "-$5.00" and row.description.startswith("Expired: what was left of")
        assert "(grant, expired)" in balance_history.history_page(session, actor, kind="adjustment").rows[0].description
        # The period's invoice bills the usage, not the expiry, and says what the grant paid.
        invoice = invoices.close_period(session, account.id, date(2026, 4, 1), after)
        assert invoice is not None
        lines = [
            (line.description, line.amount_cents)
            for line in session.exec(
                select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(col(InvoiceLine.position))
            )
        ]
        assert lines == [("Usage through Mar 31, 2026", 300), ("Paid from promotional credits", -300)]


def test_two_workers_expiring_one_grant_at_once_post_one_entry(engine):
    with Session(engine, expire_on_commit=False) as session:
        _, account = owner_and_account(session)
        entry = _grant(session, account, 700, "g1", expires_at=NOW + timedelta(hours=1))
        session.commit()
        grant_id = grants.grants_of_entries(session, account.id, [entry.id])[entry.id].id
    barrier, outcomes = threading.Barrier(2), []

    def worker() -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            outcomes.append(grants.expire_grant(session, account.id, grant_id, NOW + timedelta(hours=2)))
            session.commit()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcome is None for outcome in outcomes) == [False, True]
    with Session(engine) as session:
        assert [e.amount_cents for e in _expired_entries(session, account)] == [-700]
        assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)


def test_a_grant_taken_back_or_used_up_has_nothing_left_to_expire(session):
    _, account = owner_and_account(session)
    _grant(session, account, 500, "g1", expires_at=NOW + timedelta(days=2))
    _grant(session, account, -500, "take-1")
    _purchase(session, account, 200, "p1")
    session.commit()
    grants.upkeep(session, NOW + timedelta(days=3))
    session.commit()
    assert _expired_entries(session, account) == []
    assert ledger.balance_of(session, account.id) == 200


def test_a_grant_when_the_balance_is_below_zero_first_pays_that_debt(session):
    _, account = owner_and_account(session)
    ledger.set_overage_credit_line(session, account.id, 1_000)
    _use(session, account, 400, "u1", NOW)
    _grant(session, account, 1_000, "g1", expires_at=NOW + timedelta(days=2))
    session.commit()
    grants.upkeep(session, NOW + timedelta(days=3))
    session.commit()
    assert [e.amount_cents for e in _expired_entries(session, account)] == [-600]
    assert ledger.balance_of(session, account.id) == 0


@pytest.mark.parametrize(
    ("expires_on", "priority", "field"),
    [("2026-03-01", "", "expires_at"), ("next week", "", "expires_at"), ("", "101", "priority"), ("", "x", "priority")],
)
def test_a_bad_expiry_or_priority_is_refused_at_its_field_and_changes_nothing(session, expires_on, priority, field):
    _, account = owner_and_account(session)
    session.commit()
    with pytest.raises(ValidationFailed) as refused:
        accounts.grant_form(
            session,
            BY,
            account.public_id,
            amount_cents=1_000,
            reason="Promotion",
            request_key="k1",
            expires_on=expires_on,
            priority=priority,
        )
    assert refused.value.field == field
    session.rollback()
    assert ledger.balance_of(session, account.id) == 0
    assert session.exec(select(CreditGrant)).all() == []


def test_the_forms_last_day_is_usable_to_its_end_in_the_accounts_timezone(session):
    _, account = owner_and_account(session)
    session.exec(update(Account).where(col(Account.id) == account.id).values(timezone="Europe/Berlin"))
    session.commit()
    accounts.grant_form(
        session, BY, account.public_id, amount_cents=100, reason="Promo", request_key="k", expires_on="2099-06-30"
    )
    [grant] = session.exec(select(CreditGrant)).all()
    assert grant.expires_at == datetime(2099, 6, 30, 22, 0, tzinfo=UTC)


def test_two_workers_allocating_at_once_draw_each_debit_once(engine):
    with Session(engine, expire_on_commit=False) as session:
        _, account = owner_and_account(session)
        _grant(session, account, 5_000, "g1", expires_at=NOW + timedelta(days=9))
        for number in range(30):
            _use(session, account, 10 + number, f"u{number}", NOW + timedelta(minutes=number))
        session.commit()
    barrier = threading.Barrier(2)

    def worker() -> None:
        with Session(engine) as session:
            barrier.wait()
            grants.upkeep(session, NOW + timedelta(hours=1))
            session.commit()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        draws = session.exec(select(GrantDraw)).all()
        assert len(draws) == 30 and len({d.ledger_entry_id for d in draws}) == 30
        assert sum(d.amount_cents for d in draws) == sum(10 + n for n in range(30))
        [grant] = session.exec(select(CreditGrant)).all()
        assert grant.remaining_cents == 5_000 - sum(10 + n for n in range(30))
