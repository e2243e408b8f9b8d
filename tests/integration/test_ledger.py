import pytest
from sqlmodel import Session, func, select

from app.errors import ValidationFailed
from app.models import CreditBalance, LedgerEntry
from app.services import ledger
from app.services.ledger import InsufficientCredits
from tests.factories import make_account


def _account(session, plan_code="basic", name="Acme Inc"):
    account = make_account(session, name)
    account.plan_code = plan_code
    session.add(account)
    session.flush()
    return account


def _credit(session, account, cents, key, source="purchase"):
    return ledger.credit(
        session, account_id=account.id, amount_cents=cents, source=source, description="Top-up", idempotency_key=key
    )


def _entries(session, account):
    return session.exec(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.account_id == account.id)).one()


def assert_consistent(session, account, expected):
    assert ledger.balance_of(session, account.id) == expected
    assert ledger.ledger_sum(session, account.id) == expected


def test_credit_then_debit_keeps_balance_and_ledger_equal(session):
    account = _account(session)
    first = _credit(session, account, 2500, "topup-1")
    assert (first.amount_cents, first.balance_after_cents, first.source) == (2500, 2500, "purchase")
    assert first.public_id.startswith("txn_")
    used = ledger.debit(session, account_id=account.id, amount_cents=150, description="API", idempotency_key="use-1")
    assert (used.amount_cents, used.balance_after_cents, used.source) == (-150, 2350, "usage")
    assert_consistent(session, account, 2350)
    session.commit()
    assert_consistent(session, account, 2350)


def test_replayed_keys_return_the_first_entry_and_move_nothing(session):
    account = _account(session)
    first = _credit(session, account, 1000, "topup-1")
    use = ledger.debit(session, account_id=account.id, amount_cents=300, idempotency_key="use-1")
    session.commit()
    assert _credit(session, account, 1000, "topup-1").id == first.id
    assert _credit(session, account, 9999, "topup-1").id == first.id
    assert ledger.debit(session, account_id=account.id, amount_cents=300, idempotency_key="use-1").id == use.id
    assert _entries(session, account) == 2
    assert_consistent(session, account, 700)


def test_replay_from_another_session_after_commit(engine):
    with Session(engine) as session:
        account = _account(session)
        _credit(session, account, 1000, "topup-1")
        session.commit()
        account_id = account.id
    with Session(engine) as session:
        again = ledger.credit(
            session,
            account_id=account_id,
            amount_cents=1000,
            source="purchase",
            description="",
            idempotency_key="topup-1",
        )
        session.commit()
        assert again.balance_after_cents == 1000
        assert ledger.balance_of(session, account_id) == ledger.ledger_sum(session, account_id) == 1000


def test_losing_a_race_on_the_key_returns_the_winner_and_moves_nothing(session, monkeypatch):
    """Simulates a concurrent insert of the same key after the replay check: the unique index
    stops the second row and the savepoint undoes the second balance change."""
    account = _account(session)
    first = _credit(session, account, 1000, "topup-1")
    real_replay = ledger._replay
    calls = []

    def replay_that_misses_once(session, account_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real_replay(session, account_id, key)

    monkeypatch.setattr(ledger, "_replay", replay_that_misses_once)
    assert _credit(session, account, 1000, "topup-1").id == first.id
    assert ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="topup-1").id == first.id
    assert len(calls) == 3
    assert _entries(session, account) == 1
    assert_consistent(session, account, 1000)
    session.commit()


def test_a_key_is_scoped_to_its_account(session):
    # Unique per account, so the ledger can be distributed by account: the same key in another
    # account is that account's own entry, and each replays only its own.
    acme, other = _account(session), _account(session, name="Other Ltd")
    _credit(session, acme, 1000, "shared-key")
    _credit(session, other, 700, "shared-key")
    _credit(session, other, 700, "shared-key")
    assert_consistent(session, acme, 1000)
    assert_consistent(session, other, 700)


def test_basic_plan_cannot_go_below_zero_and_a_refused_debit_moves_nothing(session):
    account = _account(session)
    _credit(session, account, 500, "topup-1")
    ledger.debit(session, account_id=account.id, amount_cents=500, idempotency_key="use-1")
    with pytest.raises(InsufficientCredits) as refused:
        ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="use-2")
    assert refused.value.status_code == 402 and refused.value.code == "insufficient_credits"
    assert _entries(session, account) == 2
    assert_consistent(session, account, 0)
    # The refused key was not used up: it can succeed once credits arrive.
    _credit(session, account, 100, "topup-2")
    retried = ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="use-2")
    assert retried.balance_after_cents == 99
    session.commit()


def test_debit_without_any_balance_row_is_refused_cleanly(session):
    account = _account(session)
    with pytest.raises(InsufficientCredits):
        ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="use-1")
    assert _entries(session, account) == 0
    assert_consistent(session, account, 0)
    session.commit()


def test_overage_line_of_the_plan_is_respected(session):
    account = _account(session, "pro")
    assert ledger.ensure_credit_balance(session, account.id).overage_credit_line_cents == 5000
    _credit(session, account, 1000, "topup-1")
    deepest = ledger.debit(session, account_id=account.id, amount_cents=6000, idempotency_key="u1")
    assert deepest.balance_after_cents == -5000
    with pytest.raises(InsufficientCredits):
        ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="u2")
    assert_consistent(session, account, -5000)
    # Credits repay the overage first.
    assert _credit(session, account, 7000, "topup-2").balance_after_cents == 2000
    assert_consistent(session, account, 2000)
    session.commit()


def test_changing_the_overage_line_moves_no_money(session):
    account = _account(session)
    ledger.set_overage_credit_line(session, account.id, 2000)
    ledger.debit(session, account_id=account.id, amount_cents=1500, idempotency_key="u1")
    row = ledger.set_overage_credit_line(session, account.id, 1000)
    assert (row.balance_cents, row.overage_credit_line_cents) == (-1500, 1000)
    with pytest.raises(InsufficientCredits):
        ledger.debit(session, account_id=account.id, amount_cents=1, idempotency_key="u2")
    with pytest.raises(ValidationFailed):
        ledger.set_overage_credit_line(session, account.id, -1)
    assert_consistent(session, account, -1500)
    session.commit()


def test_new_balance_row_takes_the_plan_line_unless_told(session):
    custom, basic = _account(session, "custom"), _account(session, name="Basic Co")
    assert ledger.ensure_credit_balance(session, custom.id).overage_credit_line_cents == 500_000
    assert ledger.ensure_credit_balance(session, basic.id, 1234).overage_credit_line_cents == 1234
    assert ledger.ensure_credit_balance(session, basic.id, 99).overage_credit_line_cents == 1234
    assert len(session.exec(select(CreditBalance)).all()) == 2
    session.commit()


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, None])
def test_amounts_must_be_positive_integer_cents(session, amount):
    account = _account(session)
    with pytest.raises(ValidationFailed):
        _credit(session, account, amount, "k")
    with pytest.raises(ValidationFailed):
        ledger.debit(session, account_id=account.id, amount_cents=amount, idempotency_key="k")
    assert_consistent(session, account, 0)


def test_sources_and_keys_are_checked(session):
    account = _account(session)
    for source in ("usage", "bonus", ""):
        with pytest.raises(ValidationFailed):
            _credit(session, account, 100, "k", source=source)
    with pytest.raises(ValidationFailed):
        _credit(session, account, 100, "")
    with pytest.raises(ValidationFailed):
        _credit(session, account, 100, "k" * 201)
    for source in sorted(ledger.CREDIT_SOURCES):
        _credit(session, account, 100, f"credit-{source}", source=source)
    refund = ledger.debit(session, account_id=account.id, amount_cents=100, source="refund", idempotency_key="refund-1")
    assert refund.source == "refund"
    assert_consistent(session, account, 100 * len(ledger.CREDIT_SOURCES) - 100)
    session.commit()
