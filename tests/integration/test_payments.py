"""The payment lifecycle (app.services.payments): one place sets a payment's status, a succeeded
payment never goes back, and what a settled payment means for its kind runs once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from app.db import make_engine
from app.migrations import alembic_config
from app.models import Invoice, LedgerEntry, Payment
from app.services import invoices, payments
from app.services.invoices import LineItem


def _payment(session: Session, account_id: int, *, method: str = "card", key: str = "k1", **links) -> Payment:
    payment, replayed = payments.open_payment(
        session, account_id=account_id, amount_cents=2500, method=method, idempotency_key=f"{method}:{key}", **links
    )
    assert not replayed
    payment.stripe_payment_intent_id = f"pi_{method}_{key}"
    session.commit()
    return payment


@pytest.fixture
def settled(monkeypatch) -> list[tuple[str, str]]:
    """A kind of payment used only here, whose settle handler records each call."""
    calls: list[tuple[str, str]] = []

    def record(_session: Session, payment: Payment, _now: datetime) -> None:
        calls.append((payment.public_id, payment.status))

    monkeypatch.setitem(payments._KINDS, "test", payments._Kind(record, None))
    return calls


def test_opening_the_same_key_twice_finds_the_first_payment(session, owner):
    _, account = owner
    first = _payment(session, account.id)
    again, replayed = payments.open_payment(
        session, account_id=account.id, amount_cents=9900, method="card", idempotency_key="card:k1"
    )
    assert replayed
    assert again.id == first.id
    assert again.amount_cents == 2500


def test_a_settle_handler_runs_once_however_often_the_outcome_is_reported(session, owner, settled):
    _, account = owner
    payment = _payment(session, account.id, method="test")
    payments.set_status(session, payment, "requires_action")
    payments.set_status(session, payment, "processing")
    assert settled == []
    for _ in range(3):
        payments.set_status(session, payment, "succeeded")
    assert settled == [(payment.public_id, "succeeded")]


def test_a_failure_settles_once_and_a_late_success_settles_again(session, owner, settled):
    """Stripe's answer was lost (recorded failed), then its webhook says the charge succeeded."""
    _, account = owner
    payment = _payment(session, account.id, method="test")
    payments.set_status(session, payment, "failed", "Your card was declined.")
    payments.set_status(session, payment, "failed", "Your card was declined.")
    assert payment.failure_message == "Your card was declined."
    payments.set_status(session, payment, "succeeded")
    assert payment.failure_message == ""
    assert settled == [(payment.public_id, "failed"), (payment.public_id, "succeeded")]


def test_succeeded_never_goes_back(session, owner, settled):
    _, account = owner
    payment = _payment(session, account.id, method="test")
    payments.set_status(session, payment, "succeeded")
    for status in ("failed", "canceled", "requires_action", "processing", "requires_payment_method"):
        payments.set_status(session, payment, status, "late event")
        assert payment.status == "succeeded"
        assert payment.failure_message == ""
    assert settled == [(payment.public_id, "succeeded")]


def test_an_unknown_stripe_status_counts_as_failed_with_a_message(session, owner, settled):
    _, account = owner
    payment = _payment(session, account.id, method="test")
    payments.set_status(session, payment, "requires_payment_method")
    assert (payment.status, payment.failure_message) == ("failed", payments.DECLINED_MESSAGE)


def test_a_card_purchase_credits_the_ledger_once(session, owner):
    _, account = owner
    payment = _payment(session, account.id)
    for status in ("succeeded", "succeeded", "failed"):
        payments.set_status(session, payment, status)
    session.commit()
    entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account.id)).all()
    assert [(e.amount_cents, e.source, e.idempotency_key) for e in entries] == [
        (2500, "purchase", f"stripe:pi:{payment.stripe_payment_intent_id}")
    ]
    assert payment.ledger_entry_id == entries[0].id


def test_an_invoice_payment_pays_the_invoice_it_is_linked_to(session, owner):
    _, account = owner
    invoice, _ = invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[LineItem("Usage", 2500)],
        idempotency_key="test:invoice",
        status="open",
        due_at=datetime.now(UTC) + timedelta(days=14),
    )
    payment = _payment(session, account.id, method="invoice", invoice_id=invoice.id)
    payments.set_status(session, payment, "succeeded")
    session.commit()
    assert session.get(Invoice, (invoice.account_id, invoice.id)).status == "paid"
    assert session.get(Invoice, (invoice.account_id, invoice.id)).payment_id == payment.id


def test_a_kind_without_a_settle_handler_is_refused(session, owner):
    _, account = owner
    payment = _payment(session, account.id, method="nobody")
    with pytest.raises(LookupError):
        payments.set_status(session, payment, "succeeded")


def test_the_migration_links_existing_payments_to_their_invoice_and_plan_change(tmp_path):
    """Payments made before the links existed get them from their key (invoices) and from the
    plan change that points at them."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'links.db'}"
    config = alembic_config(url)
    command.upgrade(config, "20261122_products")
    engine = make_engine(url)
    account_id = 7
    with engine.begin() as conn:
        # The account as that revision had it (today's model has columns added since).
        conn.execute(
            text(
                "INSERT INTO account (id, public_id, name, logo_path, domain, timezone, language, plan_code,"
                " created_at) VALUES (:account, 'acct_links', 'Acme', '', '', 'UTC', 'en', 'pro', '2026-11-01')"
            ),
            {"account": account_id},
        )
        conn.execute(
            text(
                "INSERT INTO invoice (id, public_id, account_id, number, kind, source, status, currency,"
                " total_cents, overage_cents, issued_at, idempotency_key, bill_to_name, bill_to_address, po_number,"
                " billing_email, tax_registrations, memo, created_at) VALUES (3, 'in_x', :account, 1, 'invoice',"
                " 'period_close', 'open', 'usd', 2500, 0, '2026-11-01', 'period:7:x', '', '', '', '', '', '',"
                " '2026-11-01')"
            ),
            {"account": account_id},
        )
        for pid, method, key in (
            (1, "invoice", f"invoice:{account_id}:in_x:req"),
            (2, "plan", "plan:chg_y"),
            (3, "card", "c"),
        ):
            conn.execute(
                text(
                    "INSERT INTO payment (id, public_id, account_id, amount_cents, method, status,"
                    " stripe_payment_method_id, failure_message, idempotency_key, created_at, updated_at)"
                    " VALUES (:id, :pub, :account, 2500, :method, 'succeeded', '', '', :key, '2026-11-01', '2026-11-01')"
                ),
                {"id": pid, "pub": f"pay_{pid}", "method": method, "key": key, "account": account_id},
            )
        conn.execute(
            text(
                "INSERT INTO plan_change (id, public_id, account_id, from_plan_code, to_plan_code, from_seats,"
                " to_seats, amount_cents, effective_at, status, failure_message, payment_id, idempotency_key,"
                " created_at) VALUES (5, 'chg_y', :account, 'pro', 'business', 3, 3, 900, '2026-11-01', 'applied', '',"
                " 2, '7:r', '2026-11-01')"
            ),
            {"account": account_id},
        )
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        links = conn.execute(text("SELECT id, invoice_id, plan_change_id FROM payment ORDER BY id")).all()
    engine.dispose()
    assert [tuple(row) for row in links] == [(1, 3, None), (2, None, 5), (3, None, None)]
