from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from app.services import ledger
from app.services.ledger import InsufficientCredits
from tests.factories import make_account

operations = st.lists(
    st.tuples(st.sampled_from(["credit", "debit"]), st.integers(1, 5_000), st.integers(0, 12)),
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overage_line=st.integers(0, 3_000), ops=operations)
def test_any_sequence_keeps_balance_equal_to_ledger_and_above_the_line(sqlite_engine, overage_line, ops):
    """Each example gets its own account, so the shared database needs no wiping between them."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        account_id = make_account(session).id
        ledger.set_overage_credit_line(session, account_id, overage_line)
        session.commit()
        expected, used_keys = 0, set()
        for kind, amount, key_number in ops:
            key = f"{account_id}:{key_number}"
            try:
                if kind == "credit":
                    ledger.credit(
                        session,
                        account_id=account_id,
                        amount_cents=amount,
                        source="purchase",
                        description="",
                        idempotency_key=key,
                    )
                else:
                    ledger.debit(session, account_id=account_id, amount_cents=amount, idempotency_key=key)
            except InsufficientCredits:
                assert key not in used_keys and expected - amount < -overage_line
            else:
                if key not in used_keys:
                    used_keys.add(key)
                    expected += amount if kind == "credit" else -amount
            session.commit()
            balance = ledger.balance_of(session, account_id)
            assert balance == expected == ledger.ledger_sum(session, account_id)
            assert balance >= -overage_line
