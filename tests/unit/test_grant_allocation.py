"""The allocation of debits to credit grants (app.services.grants.allocate_entries), a pure
function: which grant pays which debit, in which order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services.grants import Draw, Entry, OpenGrant, allocate_entries

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def grant(id: int, amount: int, *, days: int | None = None, priority: int = 0, entry: int | None = None) -> OpenGrant:
    expires = T0 + timedelta(days=days) if days is not None else None
    return OpenGrant(id, entry or 1000 + id, amount, amount, expires, priority, opened=entry is None)


def entry(id: int, amount: int, source: str = "usage") -> Entry:
    return Entry(id, amount, source)


def left(allocation) -> dict[int, int]:
    return {g.id: g.remaining_cents for g in allocation.grants}


def test_debits_take_the_soonest_expiring_grant_first_then_priority_then_purchased():
    grants = [
        grant(1, 100, days=30),
        grant(2, 100, days=10),
        grant(3, 100),  # never expires: after every expiring grant
        grant(4, 100, days=30, priority=5),  # expires with 1, higher priority: before it
    ]
    result = allocate_entries(grants, 1_000, [entry(1, -150), entry(2, -200), entry(3, -200)])
    assert result.draws == [
        Draw(1, 2, 100),
        Draw(1, 4, 50),
        Draw(2, 4, 50),
        Draw(2, 1, 100),
        Draw(2, 3, 50),
        Draw(3, 3, 50),
    ]
    assert left(result) == {1: 0, 2: 0, 3: 0, 4: 0}
    assert result.purchased_cents == 1_000 - 150


def test_same_expiry_and_priority_take_the_oldest_grant_first():
    result = allocate_entries([grant(7, 50, days=5), grant(6, 50, days=5)], 0, [entry(1, -60)])
    assert result.draws == [Draw(1, 6, 50), Draw(1, 7, 10)]


def test_a_grant_opens_at_its_own_entry_and_first_covers_a_debt():
    # Purchased credits are 30 below zero when the grant of 100 arrives: it pays that debt, so 70
    # remain to draw; the debit before it drew nothing from it.
    late = grant(1, 100, days=10, entry=5)
    result = allocate_entries(
        [late], 20, [entry(3, -50), entry(5, 100, "adjustment"), entry(6, -40), entry(7, 25, "purchase")]
    )
    assert result.draws == [Draw(6, 1, 40)]
    assert left(result) == {1: 30}
    assert result.purchased_cents == 25
    assert 30 + 25 == 20 - 50 + 100 - 40 + 25  # grants left + purchased = the balance


def test_refunds_take_purchased_credits_first_and_expiry_entries_move_nothing_more():
    result = allocate_entries(
        [grant(1, 100, days=3)], 60, [entry(1, -80, "refund"), entry(2, -10, "expired"), entry(3, -5)]
    )
    assert result.draws == [Draw(1, 1, 20), Draw(3, 1, 5)]
    assert left(result) == {1: 75}
    assert result.purchased_cents == 0


def test_credits_and_debits_past_every_grant_go_to_purchased_credits():
    result = allocate_entries([grant(1, 10)], 0, [entry(1, -25), entry(2, 40, "purchase"), entry(3, -5)])
    assert result.draws == [Draw(1, 1, 10)]
    assert result.purchased_cents == -15 + 40 - 5
