"""Refunds and disputes take credits back: Stripe's charge.refunded and charge.dispute.* events
(signed, posted as Stripe sends them; localstripe records refunds but sends no events) post one
ledger entry each, whatever the balance is left at, show on the payment and in the audit log,
and a replayed or repeated event moves nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.models import AuditEvent, Invoice, LedgerEntry, Payment, utcnow
from app.payments import gateway
from app.services import invoices, ledger, subscription, topups
from app.services.customers import stripe_customer_id
from tests.factories import owner_and_account
from tests.stripe_fixtures import event, intent_for, post_event, save_card, stripe_intent

_NOV_22 = datetime(2026, 11, 22, 10, tzinfo=UTC)
_DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def _entries(session: Session, account_id: int) -> list[tuple[int, str]]:
    session.expire_all()
    rows = session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all()
    session.commit()  # the webhook writes on its own connection
    return [(e.amount_cents, e.source) for e in rows]


def _balance(session: Session, account_id: int) -> int:
    balance = ledger.balance_of(session, account_id)
    assert balance == ledger.ledger_sum(session, account_id)
    session.commit()
    return balance


def _payment(session: Session, public_id: str) -> Payment:
    session.expire_all()
    payment = session.exec(select(Payment).where(Payment.public_id == public_id)).one()
    session.commit()
    return payment


def _audit(session: Session, account_id: int, action: str) -> list[str]:
    rows = session.exec(
        select(AuditEvent).where(AuditEvent.account_id == account_id, AuditEvent.action == action)
    ).all()
    assert all(row.actor_name == "Stripe" for row in rows)
    return [row.summary for row in rows]


def _charge_at_stripe(payment_intent_id: str) -> dict:
    """The intent's charge as Stripe has it now, as charge.refunded carries it."""
    charge_id = gateway.id_of(stripe_intent(payment_intent_id)["latest_charge"])
    return gateway.client().v1.charges.retrieve(charge_id).to_dict()


def test_a_top_up_refunded_at_stripe_takes_its_credits_back_once_even_below_zero(session, localstripe, webhook_client):
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    topup = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r-1")
    session.commit()
    assert topup.status == "succeeded" and _balance(session, account.id) == 2500
    ledger.debit(session, account_id=account.id, amount_cents=2000, idempotency_key="spent")
    session.commit()

    # A partial refund: the event is delivered twice, and Stripe sends the same state again.
    gateway.client().v1.refunds.create({"payment_intent": topup.payment_intent_id, "amount": 1000})
    partial = _charge_at_stripe(topup.payment_intent_id)
    assert (partial["amount_refunded"], partial["refunded"]) == (1000, False)
    partial_event = event("charge.refunded", partial)
    for payload in (partial_event, partial_event, event("charge.refunded", partial)):
        assert post_event(webhook_client, payload).status_code == 200
    assert _balance(session, account.id) == -500
    assert _payment(session, topup.payment_id).status == "partially_refunded"

    # The rest: the balance goes below zero, past the Basic plan's $0 overage line.
    gateway.client().v1.refunds.create({"payment_intent": topup.payment_intent_id, "amount": 1500})
    full = _charge_at_stripe(topup.payment_intent_id)
    assert (full["amount_refunded"], full["refunded"]) == (2500, True)
    assert post_event(webhook_client, event("charge.refunded", full)).status_code == 200
    # Late and out of order: the partial refund's state again, and the intent's success.
    assert post_event(webhook_client, event("charge.refunded", partial)).status_code == 200
    assert (
        post_event(
            webhook_client, event("payment_intent.succeeded", stripe_intent(topup.payment_intent_id))
        ).status_code
        == 200
    )

    assert _entries(session, account.id) == [(2500, "purchase"), (-2000, "usage"), (-1000, "refund"), (-1500, "refund")]
    assert _balance(session, account.id) == -2000
    payment = _payment(session, topup.payment_id)
    assert (payment.status, payment.refunded_cents) == ("refunded", 2500)
    assert [p.status for p in topups.recent_payments(session, actor, "UTC")] == ["Refunded"]
    assert _audit(session, account.id, "payment.refund") == [
        f"Refunded $10.00 of the $25.00 payment {payment.public_id}; $10.00 of usage credits taken back",
        f"Refunded $15.00 of the $25.00 payment {payment.public_id}; $15.00 of usage credits taken back",
    ]


def test_a_refund_event_that_does_not_match_the_payment_moves_nothing(session, localstripe, webhook_client, caplog):
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    topup = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r-2")
    session.commit()
    gateway.client().v1.refunds.create({"payment_intent": topup.payment_intent_id})
    charge = _charge_at_stripe(topup.payment_intent_id)
    for crafted in ({"customer": "cus_someone_else"}, {"currency": "eur"}, {"amount": 250_000}):
        assert post_event(webhook_client, event("charge.refunded", {**charge, **crafted})).status_code == 200
    assert _balance(session, account.id) == 2500
    assert _payment(session, topup.payment_id).status == "succeeded"
    # Another customer's charge is looked for in that customer's account: none of ours.
    assert caplog.text.count("matches no payment of ours") == 1
    assert caplog.text.count("does not match payment") == 2


@pytest.fixture
def disputable_payment(session: Session, webhook_secret, webhook_client, monkeypatch) -> Payment:
    """A $25 top-up that succeeded (credited through its webhook), whose PaymentIntent Stripe
    knows as the account's customer's (a dispute names no customer: its intent's is asked)."""
    _, account = owner_and_account(session)
    payment = Payment(
        account_id=account.id,
        amount_cents=2500,
        method="card",
        status="requires_action",
        stripe_payment_intent_id="pi_disputed",
        idempotency_key="card:disputed",
    )
    session.add(payment)
    session.commit()
    assert (
        post_event(webhook_client, event("payment_intent.succeeded", intent_for(session, payment))).status_code == 200
    )
    assert _balance(session, account.id) == 2500
    customer = stripe_customer_id(session, account.id)
    monkeypatch.setattr(gateway, "payment_intent_customer", lambda intent: customer if intent == "pi_disputed" else "")
    return payment


def _dispute(status: str, amount: int = 2500, **extra) -> dict:
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "charge": "ch_disputed",
        "payment_intent": "pi_disputed",
        "reason": "fraudulent",
        "status": status,
        **extra,
    }


@pytest.mark.parametrize(
    ("outcome", "status", "balance", "entries"),
    [
        ("won", "dispute_won", 2500, [(2500, "purchase"), (-2500, "dispute"), (2500, "dispute")]),
        ("lost", "dispute_lost", 0, [(2500, "purchase"), (-2500, "dispute")]),
    ],
)
def test_a_dispute_takes_the_credits_back_and_a_won_one_gives_them_back_once(
    session, disputable_payment, webhook_secret, webhook_client, outcome, status, balance, entries
):
    payment = disputable_payment
    created = event("charge.dispute.created", _dispute("needs_response"))
    for payload in (created, created, event("charge.dispute.created", _dispute("needs_response"))):
        assert post_event(webhook_client, payload).status_code == 200
    assert _balance(session, payment.account_id) == 0
    assert _payment(session, payment.public_id).status == "disputed"

    closed = event("charge.dispute.closed", _dispute(outcome))
    for payload in (closed, closed, event("charge.dispute.closed", _dispute(outcome))):
        assert post_event(webhook_client, payload).status_code == 200
    # A late copy of the opening changes nothing.
    assert post_event(webhook_client, event("charge.dispute.created", _dispute("needs_response"))).status_code == 200

    assert _entries(session, payment.account_id) == entries
    assert _balance(session, payment.account_id) == balance
    assert _payment(session, payment.public_id).status == status
    assert _audit(session, payment.account_id, "payment.dispute") == [
        f"A $25.00 dispute was opened on payment {payment.public_id}; $25.00 of usage credits taken back",
        f"The dispute on payment {payment.public_id} was {outcome}"
        + ("; $25.00 of usage credits given back" if outcome == "won" else "; no usage credits moved"),
    ]


def test_a_lost_dispute_seen_only_when_closed_takes_the_credits_back_once(
    session, disputable_payment, webhook_secret, webhook_client
):
    payment = disputable_payment
    for _ in range(2):
        assert post_event(webhook_client, event("charge.dispute.closed", _dispute("lost"))).status_code == 200
    assert _entries(session, payment.account_id) == [(2500, "purchase"), (-2500, "dispute")]
    assert _payment(session, payment.public_id).status == "dispute_lost"


@pytest.mark.parametrize(
    "crafted",
    [
        pytest.param({"currency": "eur"}, id="currency"),
        pytest.param({"amount": 250_000}, id="amount"),
        pytest.param({"payment_intent": "pi_unknown"}, id="intent"),
    ],
)
def test_a_dispute_that_does_not_match_the_payment_moves_nothing(
    session, disputable_payment, webhook_secret, webhook_client, caplog, crafted
):
    payment = disputable_payment
    assert (
        post_event(webhook_client, event("charge.dispute.created", _dispute("needs_response", **crafted))).status_code
        == 200
    )
    assert _balance(session, payment.account_id) == 2500
    assert _payment(session, payment.public_id).status == "succeeded"
    assert "ignored" in caplog.text or "matches no payment" in caplog.text


def test_a_dispute_on_a_payment_that_bought_no_credits_is_recorded_and_moves_none(
    session, disputable_payment, webhook_secret, webhook_client
):
    """An invoice or plan payment bought no credits: its dispute is shown, nothing is taken."""
    payment = disputable_payment
    row = _payment(session, payment.public_id)
    row.ledger_entry_id = None
    session.add(row)
    session.commit()
    assert post_event(webhook_client, event("charge.dispute.created", _dispute("needs_response"))).status_code == 200
    assert _balance(session, payment.account_id) == 2500
    assert _payment(session, payment.public_id).status == "disputed"
    assert stripe_customer_id(session, payment.account_id)


def test_funds_withdrawn_after_the_opening_takes_nothing_more_and_reinstated_gives_back_once(
    session, disputable_payment, webhook_secret, webhook_client
):
    """Stripe sends created, then funds_withdrawn; when won, funds_reinstated, then closed."""
    payment = disputable_payment
    for kind in ("created", "funds_withdrawn", "funds_withdrawn"):
        assert (
            post_event(webhook_client, event(f"charge.dispute.{kind}", _dispute("needs_response"))).status_code == 200
        )
    assert _balance(session, payment.account_id) == 0
    assert _payment(session, payment.public_id).status == "disputed"

    for _ in range(2):
        reinstated = event("charge.dispute.funds_reinstated", _dispute("won"))
        assert post_event(webhook_client, reinstated).status_code == 200
    assert _balance(session, payment.account_id) == 2500
    assert post_event(webhook_client, event("charge.dispute.closed", _dispute("won"))).status_code == 200
    assert _entries(session, payment.account_id) == [(2500, "purchase"), (-2500, "dispute"), (2500, "dispute")]
    assert _balance(session, payment.account_id) == 2500
    assert _payment(session, payment.public_id).status == "dispute_won"
    assert _audit(session, payment.account_id, "payment.dispute") == [
        f"A $25.00 dispute was opened on payment {payment.public_id}; $25.00 of usage credits taken back",
        f"The dispute on payment {payment.public_id} was won; $25.00 of usage credits given back",
    ]


def test_an_inquiry_takes_nothing_until_stripe_withdraws_the_funds(
    session, disputable_payment, webhook_secret, webhook_client
):
    payment = disputable_payment
    assert (
        post_event(webhook_client, event("charge.dispute.created", _dispute("warning_needs_response"))).status_code
        == 200
    )
    assert _balance(session, payment.account_id) == 2500
    for _ in range(2):
        withdrawn = event("charge.dispute.funds_withdrawn", _dispute("needs_response"))
        assert post_event(webhook_client, withdrawn).status_code == 200
    assert _entries(session, payment.account_id) == [(2500, "purchase"), (-2500, "dispute")]
    assert post_event(webhook_client, event("charge.dispute.closed", _dispute("lost"))).status_code == 200
    assert _entries(session, payment.account_id) == [(2500, "purchase"), (-2500, "dispute")]
    assert _payment(session, payment.public_id).status == "dispute_lost"
    assert _audit(session, payment.account_id, "payment.dispute")[1] == (
        f"The $25.00 disputed on payment {payment.public_id} was withdrawn; $25.00 of usage credits taken back"
    )


def _refund_at_stripe(payment_intent_id: str, amount: int | None = None) -> dict:
    """Refund (part of) the intent's charge at localstripe; the charge.refunded event Stripe sends."""
    gateway.client().v1.refunds.create(
        {"payment_intent": payment_intent_id, **({"amount": amount} if amount is not None else {})}
    )
    return event("charge.refunded", _charge_at_stripe(payment_intent_id))


def _invoice_status(session: Session, invoice: Invoice) -> str:
    key = (invoice.account_id, invoice.id)
    session.expire_all()
    status = session.get(Invoice, key).status
    session.commit()
    return status


def _paid_overage_invoice(session: Session):
    """A $50 invoice, $30 of it overage (usage below zero, brought back to $0 by paying it)."""
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    ledger.set_overage_credit_line(session, account.id, 5_000)
    ledger.debit(session, account_id=account.id, amount_cents=3_000, idempotency_key="overage")
    invoice, _ = invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[invoices.LineItem("Usage", 3_000), invoices.LineItem("Product", 2_000)],
        idempotency_key="open",
        status="open",
        due_at=utcnow() + timedelta(days=14),
        overage_cents=3_000,
    )
    session.commit()
    paid = invoices.pay_invoice(session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="k")
    session.commit()
    assert paid.status == "succeeded" and _balance(session, account.id) == 0
    return actor, account, invoice, paid.payment_intent_id


def test_a_refunded_invoice_payment_takes_back_the_overage_it_paid_and_the_invoice_shows_refunded(
    session, localstripe, webhook_client
):
    actor, account, invoice, intent_id = _paid_overage_invoice(session)

    partial = _refund_at_stripe(intent_id, 1_000)
    for payload in (partial, partial):
        assert post_event(webhook_client, payload).status_code == 200
    assert _balance(session, account.id) == -1_000
    assert _invoice_status(session, invoice) == "paid"

    assert post_event(webhook_client, _refund_at_stripe(intent_id)).status_code == 200
    assert post_event(webhook_client, partial).status_code == 200  # late and out of order
    # The overage is taken back first; the $20 of the product's line bought no credits.
    assert _entries(session, account.id)[-2:] == [(-1_000, "refund"), (-2_000, "refund")]
    assert _balance(session, account.id) == -3_000
    assert _invoice_status(session, invoice) == "refunded"
    payment = session.exec(select(Payment).where(Payment.stripe_payment_intent_id == intent_id)).one()
    assert (payment.status, payment.refunded_cents) == ("refunded", 5_000)
    assert [row.status for row in invoices.history(session, actor)] == ["refunded"]


def test_a_dispute_on_an_invoice_payment_takes_the_overage_back_and_a_won_one_restores_it(
    session, localstripe, webhook_client
):
    actor, account, invoice, intent_id = _paid_overage_invoice(session)
    dispute = {**_dispute("needs_response", amount=5_000), "payment_intent": intent_id}
    for kind in ("created", "funds_withdrawn"):
        assert post_event(webhook_client, event(f"charge.dispute.{kind}", dispute)).status_code == 200
    assert _balance(session, account.id) == -3_000
    assert _invoice_status(session, invoice) == "disputed"

    won = {**dispute, "status": "won"}
    for kind in ("funds_reinstated", "closed"):
        assert post_event(webhook_client, event(f"charge.dispute.{kind}", won)).status_code == 200
    assert _balance(session, account.id) == 0
    assert _invoice_status(session, invoice) == "paid"


def test_a_refunded_upgrade_takes_back_the_downgrade_credit_it_paid_for(session, localstripe, webhook_client):
    """Pro bought for the rest of the month, then cancelled (its prorated price credited), then the
    charge refunded: the credit was paid by nothing any more."""
    actor, account = owner_and_account(session)
    save_card(session, account, "pm_card_visa")
    up = subscription.change_plan(session, actor, plan_code="pro", request_key="up", now=_NOV_22)
    session.commit()
    down = subscription.change_plan(session, actor, plan_code="basic", request_key="down", now=_NOV_22)
    session.commit()
    assert up.amount_cents > 0 and down.credited_cents == up.amount_cents == _balance(session, account.id)

    refund = _refund_at_stripe(up.payment_intent_id)
    for payload in (refund, refund):
        assert post_event(webhook_client, payload).status_code == 200
    assert _entries(session, account.id) == [(up.amount_cents, "plan_change"), (-up.amount_cents, "refund")]
    assert _balance(session, account.id) == 0
    plan_invoice = session.exec(select(Invoice).where(Invoice.source == "plan_change")).one()
    assert _invoice_status(session, plan_invoice) == "refunded"


def test_a_refunded_renewal_takes_back_the_cancellation_credit_it_paid_for(session, localstripe, webhook_client):
    """The renewal collected off-session, then the plan cancelled (the paid month credited)."""
    actor, account = owner_and_account(session)
    save_card(session, account, "pm_card_visa")
    account.plan_code, account.seats_purchased = "pro", 7
    session.add(account)
    session.commit()
    renewal = invoices.close_period(session, account.id, _DEC_1.date(), now=_DEC_1)
    session.commit()
    invoices.collect(session, renewal.account_id, renewal.id, 1, now=_DEC_1)
    session.commit()
    cancel = subscription.change_plan(session, actor, plan_code="basic", request_key="cancel", now=_DEC_1)
    session.commit()
    paid = session.exec(select(Payment).where(Payment.invoice_id == renewal.id)).one()
    assert (paid.method, paid.status, cancel.credited_cents) == ("renewal", "succeeded", 20_300)
    session.commit()  # the webhook writes on its own connection

    assert post_event(webhook_client, _refund_at_stripe(paid.stripe_payment_intent_id)).status_code == 200
    assert _entries(session, account.id) == [(20_300, "plan_change"), (-20_300, "refund")]
    assert _invoice_status(session, renewal) == "refunded"
