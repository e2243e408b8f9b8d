"""Money reconciles with Stripe: after every integration test that charges through localstripe,
every succeeded PaymentIntent of the test's customers is a succeeded Payment of the same amount
(or one refunded or disputed since), a card purchase or auto recharge credited exactly once
(keyed by the intent), and every purchase or recharge credit is such an intent's (grants, the
demo's seeded history and other credits are not payments). Checked per test because each test
has a database of its own, so that after the whole suite every charge localstripe made was
accounted for.

And the request path filters by account (app/models/distribution.py): every statement an
integration test makes the request path run on an account table names account_id, or the test
fails at teardown naming the statement and the code that ran it (tests/distribution.py says what
is off the request path, and why)."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.logs import configure_logging
from app.models import Account, LedgerEntry, Payment
from app.services.payments import SUCCEEDED
from tests.distribution import is_unscoped, request_path_caller
from tests.stripe_fixtures import payment_intents

CREDITED_KINDS = ("card", "auto_recharge")
PAYMENT_SOURCES = ("purchase", "auto_recharge")


def unreconciled(engine: Engine, base_url: str) -> list[str]:
    """What does not add up between the database and localstripe; empty when money is right."""
    with Session(engine) as session:
        customers = set(session.exec(select(Account.stripe_customer_id)).all()) - {""}
        rows = session.exec(select(Payment)).all()
        credits = session.exec(select(LedgerEntry).where(col(LedgerEntry.source).in_(PAYMENT_SOURCES))).all()
    payments = {p.stripe_payment_intent_id: p for p in rows if p.stripe_payment_intent_id}
    by_public_id = {p.public_id: p for p in rows}
    if not customers:
        return []
    succeeded = {
        i["id"]: i for i in payment_intents(base_url) if i.get("customer") in customers and i["status"] == "succeeded"
    }
    credited = Counter(entry.idempotency_key for entry in credits)
    problems = []
    for pi_id, intent in succeeded.items():
        payment = payments.get(pi_id)
        if payment is None or payment.status not in SUCCEEDED or payment.amount_cents != intent["amount"]:
            named = by_public_id.get((intent.get("metadata") or {}).get("payment_id", ""))
            state = (
                f"{payment.status} for {payment.amount_cents}"
                if payment
                else f"{named.status} without the intent recorded"
                if named
                else "missing"
            )
            problems.append(f"{pi_id} charged {intent['amount']} cents, but its payment is {state}")
        elif payment.method in CREDITED_KINDS and credited[f"stripe:pi:{pi_id}"] != 1:
            problems.append(
                f"{pi_id} charged {intent['amount']} cents, credited {credited[f'stripe:pi:{pi_id}']} times"
            )
    for entry in credits:
        key = entry.idempotency_key
        if key.startswith(("stripe:cs:", "demo:")):
            continue  # crypto (a Checkout Session, which localstripe does not run); the demo's history
        intent = succeeded.get(key.removeprefix("stripe:pi:")) if key.startswith("stripe:pi:") else None
        if intent is None or intent["amount"] != entry.amount_cents:
            problems.append(f"credit {key} of {entry.amount_cents} cents has no succeeded PaymentIntent of that amount")
    return problems


@pytest.fixture
def json_logs():
    """The console's log as LOG_FORMAT=json writes it: (records, raw text)."""
    configure_logging("json")
    root = logging.getLogger()
    (handler,) = [h for h in root.handlers if h.get_name() == "ledgerdesk"]
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]

    def lines() -> tuple[list[dict], str]:
        text = stream.getvalue()
        return [json.loads(line) for line in text.splitlines()], text

    yield lines
    root.removeHandler(handler)
    logging.getLogger("ledgerdesk").setLevel(logging.NOTSET)


@pytest.fixture(autouse=True)
def _money_reconciles_with_stripe(request):
    if "localstripe" not in request.fixturenames or "engine" not in request.fixturenames:
        yield
        return
    # Taken now, so that the database outlives this check at teardown.
    engine, base_url = request.getfixturevalue("engine"), request.getfixturevalue("localstripe")
    yield
    if getattr(request.node, "call_failed", False):
        return  # the test's own failure says what went wrong
    problems = unreconciled(engine, base_url)
    assert not problems, "money does not reconcile with Stripe:\n" + "\n".join(problems)


@pytest.fixture(autouse=True)
def _request_path_filters_by_account():
    """Every engine's statements while the test runs; the stack is looked at only for those that
    do not name account_id on an account table (few), so the check costs little."""
    found: dict[str, str] = {}

    def record(_conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        if statement not in found and is_unscoped(statement) and (caller := request_path_caller()):
            found[statement] = caller

    event.listen(Engine, "before_cursor_execute", record)
    yield
    event.remove(Engine, "before_cursor_execute", record)
    assert not found, "the request path ran statements on account tables without account_id:\n" + "\n".join(
        f"{caller}: {' '.join(statement.split())}" for statement, caller in found.items()
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.call_failed = True
    return report
