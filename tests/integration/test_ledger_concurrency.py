"""Hundreds of debits and credits at once on PostgreSQL, where transactions really overlap."""

import random
import threading
from collections import defaultdict

from sqlmodel import Session, select

from app.models import LedgerEntry
from app.services import ledger
from app.services.ledger import InsufficientCredits
from tests.factories import grant, make_account

THREADS = 16
OPS_PER_THREAD = 30
OVERAGE_LINE = 1_000
OPENING_CREDIT = 5_000
SHARED_KEYS = 40


def _operation(key: str) -> tuple[str, int]:
    """Kind and amount follow from the key, so every thread replaying a key asks for the same thing."""
    rng = random.Random(key)
    return ("credit" if rng.random() < 0.3 else "debit"), rng.randint(1, 200)


def test_concurrent_debits_and_credits_lose_nothing_and_double_nothing(pg_engine):
    with Session(pg_engine) as session:
        account_id = make_account(session).id
        ledger.set_overage_credit_line(session, account_id, OVERAGE_LINE)
        grant(session, account_id, OPENING_CREDIT, description="Opening", key="opening")
        session.commit()

    start = threading.Barrier(THREADS)
    outcomes: dict[str, set[int]] = defaultdict(set)  # key -> ids of the entries returned for it
    refused: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        rng = random.Random(number)
        start.wait()
        for op in range(OPS_PER_THREAD):
            # A third of the operations replay one of a few shared keys, from several threads at once.
            key = f"shared-{rng.randrange(SHARED_KEYS)}" if rng.random() < 0.35 else f"t{number}-{op}"
            kind, amount = _operation(key)
            try:
                with Session(pg_engine, expire_on_commit=False) as session:
                    if kind == "credit":
                        entry = ledger.credit(
                            session,
                            account_id=account_id,
                            amount_cents=amount,
                            source="purchase",
                            description="",
                            idempotency_key=key,
                        )
                    else:
                        entry = ledger.debit(session, account_id=account_id, amount_cents=amount, idempotency_key=key)
                    session.commit()
                with lock:
                    outcomes[key].add(entry.id)
            except InsufficientCredits:
                with lock:
                    refused.append(key)
            except BaseException as error:  # reported below, never swallowed
                with lock:
                    failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert all(len(ids) == 1 for ids in outcomes.values()), "a replayed key returned two different entries"
    expected = OPENING_CREDIT + sum(
        amount if kind == "credit" else -amount for kind, amount in map(_operation, outcomes)
    )
    with Session(pg_engine) as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()
        assert {e.idempotency_key for e in entries} == set(outcomes) | {"opening"}
        assert {e.id for e in entries if e.idempotency_key != "opening"} == set().union(*outcomes.values())
        assert min(e.balance_after_cents for e in entries) >= -OVERAGE_LINE
        assert ledger.balance_of(session, account_id) == expected == ledger.ledger_sum(session, account_id)
        assert expected >= -OVERAGE_LINE
    # The run exercised what it is meant to: replays from several threads and refused debits.
    assert sum(1 for key in outcomes if key.startswith("shared-")) > 10
    assert refused
