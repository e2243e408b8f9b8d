"""A Payment is committed before Stripe is called, on every charging path (top-ups, invoice
payments, plan changes): when the request's transaction fails after Stripe charged the card, the
charge is still found, by Stripe's webhook or by the replayed request, and credited exactly once.
Against a real localstripe process, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.models import Account, Invoice, LedgerEntry, Payment, PlanChange
from app.payments import gateway
from app.services import invoices, ledger, payments, subscription, topups
from app.services.customers import stripe_customer_id
from app.services.permissions import Actor
from tests.stripe_fixtures import event, payment_intents, post_event, save_card

pytestmark = pytest.mark.usefixtures("localstripe")

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


class Crashed(Exception):
    """The request's transaction failing after Stripe answered (a lost connection, a crash)."""


@pytest.fixture
def crash_after_stripe(monkeypatch) -> Callable[[], None]:
    """Stripe creates the intent, then the request fails before its transaction commits."""
    create = gateway.create_payment_intent

    def created_then_crashed(**kwargs):
        create(**kwargs)
        raise Crashed

    def arm() -> None:
        monkeypatch.setattr(gateway, "create_payment_intent", created_then_crashed)

    return arm


def _intents_at_stripe(localstripe: str, session: Session, account_id: int) -> list[dict]:
    customer_id = stripe_customer_id(session, account_id)
    session.commit()  # ends the read, so the webhook's own connection can write on SQLite
    return [intent for intent in payment_intents(localstripe) if intent.get("customer") == customer_id]


def _topup(session: Session, actor: Actor, card: str) -> topups.TopupResult:
    return topups.start_card_topup(session, actor, amount_text="21", payment_method_id=card, request_key="click-1")


def _credited(session: Session, account_id: int) -> list[tuple[str, int]]:
    session.expire_all()
    entries = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()
    return [(entry.source, entry.amount_cents) for entry in entries]


def _charged_then_crashed(session: Session, charge: Callable[[], object], arm: Callable[[], None]) -> None:
    arm()
    with pytest.raises(Crashed):
        charge()
    session.rollback()


@pytest.mark.parametrize("then", ["webhook", "replay"])
def test_a_topup_whose_transaction_failed_after_stripe_charged_is_credited_once(
    session, owner, localstripe, webhook_client, crash_after_stripe, monkeypatch, then
):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")

    _charged_then_crashed(session, lambda: _topup(session, actor, card), crash_after_stripe)
    [intent] = _intents_at_stripe(localstripe, session, account.id)
    assert (intent["status"], intent["amount"]) == ("succeeded", 2100)
    payment = session.exec(select(Payment)).one()
    assert intent["metadata"]["payment_id"] == payment.public_id
    session.commit()
    monkeypatch.undo()

    if then == "webhook":
        assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    else:
        result = _topup(session, actor, card)
        session.commit()
        assert (result.status, result.payment_intent_id) == ("succeeded", intent["id"])
    assert _credited(session, account.id) == [("purchase", 2100)]

    # The other one reports it again: nothing more.
    _topup(session, actor, card)
    session.commit()
    post_event(webhook_client, event("payment_intent.succeeded", intent))
    assert _credited(session, account.id) == [("purchase", 2100)]
    assert ledger.balance_of(session, account.id) == 2100 == ledger.ledger_sum(session, account.id)
    assert len(_intents_at_stripe(localstripe, session, account.id)) == 1


@pytest.mark.parametrize("then", ["webhook", "replay"])
def test_an_invoice_payment_whose_transaction_failed_after_stripe_charged_pays_it_once(
    session, owner, localstripe, webhook_client, crash_after_stripe, monkeypatch, then
):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    invoice, _ = invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[invoices.LineItem("Pro plan seats", 4_900)],
        idempotency_key="open-invoice",
        status="open",
        due_at=datetime.now(UTC) + timedelta(days=14),
    )
    session.commit()

    def pay():
        return invoices.pay_invoice(
            session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="click-1"
        )

    _charged_then_crashed(session, pay, crash_after_stripe)
    [intent] = _intents_at_stripe(localstripe, session, account.id)
    monkeypatch.undo()

    if then == "webhook":
        assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    else:
        assert pay().status == "succeeded"
        session.commit()
    session.expire_all()
    paid = session.get(Invoice, (invoice.account_id, invoice.id))
    payment = session.exec(select(Payment)).one()
    assert (paid.status, paid.payment_id) == ("paid", payment.id)
    assert (payment.status, payment.stripe_payment_intent_id) == ("succeeded", intent["id"])
    assert len(_intents_at_stripe(localstripe, session, account.id)) == 1


@pytest.mark.parametrize("then", ["webhook", "replay"])
def test_an_upgrade_whose_transaction_failed_after_stripe_charged_applies_once(
    session, owner, localstripe, webhook_client, crash_after_stripe, monkeypatch, then
):
    actor, account = owner
    save_card(session, account, "pm_card_visa")

    def upgrade():
        return subscription.change_plan(session, actor, plan_code="pro", request_key="click-1", now=NOW)

    _charged_then_crashed(session, upgrade, crash_after_stripe)
    [intent] = _intents_at_stripe(localstripe, session, account.id)
    monkeypatch.undo()

    if then == "webhook":
        assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    else:
        assert upgrade().status == "applied"
        session.commit()
    assert upgrade().status == "applied"
    session.commit()
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "pro"
    assert session.exec(select(PlanChange.status)).all() == ["applied"]
    assert session.exec(select(Payment.status)).all() == ["succeeded"]
    assert len(_intents_at_stripe(localstripe, session, account.id)) == 1


def test_a_payment_that_never_reached_stripe_fails_once_stripe_has_no_intent_for_it(session, owner, monkeypatch):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")

    def crashed_before(**_kwargs):
        raise Crashed

    monkeypatch.setattr(gateway, "create_payment_intent", crashed_before)
    with pytest.raises(Crashed):
        _topup(session, actor, card)
    session.rollback()
    monkeypatch.undo()
    payment = session.exec(select(Payment)).one()

    # While the call could still be under way, a replay cannot tell: it waits.
    assert _topup(session, actor, card).status == "pending"
    later = payment.created_at + payments.UNREACHED_AFTER
    payments.refresh(session, payment, now=later)
    session.commit()
    assert (payment.status, payment.failure_message) == ("failed", payments.NOT_REACHED_MESSAGE)
    assert _credited(session, account.id) == []
