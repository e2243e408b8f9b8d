"""Live updates, the publishing side, and what the console's banner says: a change is told once
it commits (never when rolled back), however many changes come in, once per flush; through Redis
to every listening process; and the banner's notices for those who may act on them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import Session

from app.models import CreditBalance, utcnow
from app.services import balance_history, ledger, live, spend
from app.services.notices import notices_for
from app.services.overview import billing_settings
from tests.factories import actor_for, grant, make_user, owner_and_account
from tests.live_backend import redis_reason


@pytest.fixture(autouse=True)
def _nothing_pending():
    live._take_pending()
    yield
    live._take_pending()


def test_a_change_is_told_once_committed_and_forgotten_when_rolled_back(session: Session):
    _, account = owner_and_account(session)
    grant(session, account.id, 500, key="first")
    assert live._take_pending() == set()  # not before the commit
    session.commit()
    assert live._take_pending() == {account.id}

    grant(session, account.id, 500, key="second")
    session.rollback()
    session.commit()
    assert live._take_pending() == set()


def test_many_changes_are_sent_as_one_message_per_flush():
    received: list[set[int]] = []

    async def listener(account_ids: set[int]) -> None:
        received.append(account_ids)

    async def run() -> None:
        await live.listen("", listener)
        publisher = asyncio.create_task(live.run_publisher(""))
        for _ in range(1000):
            live.changed(7)
        live.changed(9)
        await asyncio.sleep(live.FLUSH_SECONDS * 3)
        publisher.cancel()

    try:
        asyncio.run(run())
    finally:
        live._local_listeners.clear()
    assert received == [{7, 9}]


@pytest.mark.skipif(redis_reason() is not None, reason=str(redis_reason()))
def test_through_redis_every_listening_process_hears_it():
    url = "redis://127.0.0.1:6379/9"
    received: list[set[int]] = []

    async def listener(account_ids: set[int]) -> None:
        received.append(account_ids)

    async def run() -> None:
        listening = asyncio.create_task(live.listen(url, listener))
        await asyncio.sleep(0.3)  # subscribed
        publisher = asyncio.create_task(live.run_publisher(url))
        live.changed(41)
        for _ in range(40):
            if received:
                break
            await asyncio.sleep(0.05)
        publisher.cancel()
        listening.cancel()

    asyncio.run(run())
    assert {41} in received


def test_the_banner_tells_who_may_act_what_needs_doing(session: Session):
    owner, account = owner_and_account(session)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()
    assert notices_for(session, owner) == []

    settings = billing_settings(session, account.id)
    settings.auto_recharge_disabled_reason = "Your card was declined."
    session.add(settings)
    ledger.set_overage_credit_line(session, account.id, 1_000)
    ledger.debit(
        session, account_id=account.id, amount_cents=300, source="usage", description="x", idempotency_key="u1"
    )
    spend.save_settings(session, owner, enabled=True, daily_budget="5", notify_threshold="", webhook_url="")
    session.commit()
    keys = [notice.key for notice in notices_for(session, owner)]
    assert keys == ["auto_recharge_off", "balance_below_zero"]
    assert notices_for(session, member) == []

    balance = session.get(CreditBalance, account.id)
    balance.usage_day, balance.used_today_cents = ledger.utc_day(utcnow()), 500
    session.add(balance)
    session.commit()
    assert "daily_budget_reached" in [notice.key for notice in notices_for(session, owner)]
    tomorrow = utcnow() + timedelta(days=1)
    assert "daily_budget_reached" not in [notice.key for notice in notices_for(session, owner, tomorrow)]
    (budget,) = [n for n in notices_for(session, owner) if n.key == "daily_budget_reached"]
    assert budget.href == "/billing/spend-management"


def test_balance_history_counts_what_arrived_after_its_first_page_within_its_filters(session: Session):
    owner, account = owner_and_account(session)
    grant(session, account.id, 1_000)
    session.commit()
    seen = balance_history.newest_id(session, owner)
    for number in range(3):
        ledger.debit(
            session,
            account_id=account.id,
            amount_cents=10,
            source="usage",
            description="call",
            idempotency_key=f"call-{number}",
        )
    grant(session, account.id, 100, key="another")
    session.commit()
    assert balance_history.count_newer(session, owner, seen) == 4
    assert balance_history.count_newer(session, owner, seen, kind="usage") == 3
    assert balance_history.count_newer(session, owner, balance_history.newest_id(session, owner)) == 0
