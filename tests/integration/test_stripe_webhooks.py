"""The Stripe webhook receiver: signed events move money once; forged or stale ones store nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlmodel import Session, select

import app.jobs.handlers  # noqa: F401  registers the "stripe_event" job
from app.jobs.queue import run_due_jobs
from app.models import LedgerEntry, Payment, StripeEvent, utcnow
from app.payments import gateway
from app.services import customers, ledger, payments, topups
from app.services.customers import account_of
from tests.factories import owner_and_account
from tests.stripe_fixtures import WEBHOOK_SECRET, event, post_event, raw_card, save_card, signature, stripe_intent

CUSTOMER = "cus_test_webhooks"


def _pending_card_payment(
    session: Session, account_id: int, pi_id: str = "pi_test_3ds", method: str = "card"
) -> Payment:
    payment = Payment(
        account_id=account_id,
        amount_cents=2500,
        method=method,
        status="requires_action",
        stripe_payment_intent_id=pi_id,
        idempotency_key=f"{method}:{account_id}:{pi_id}",
    )
    session.add(payment)
    account_of(session, account_id).stripe_customer_id = CUSTOMER
    session.commit()
    return payment


def _intent(pi_id: str, status: str = "succeeded", **extra) -> dict:
    """The intent as Stripe sends it for `_pending_card_payment`."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "customer": CUSTOMER,
        "status": status,
        "metadata": {},
        **extra,
    }


def _entries(session: Session, account_id: int) -> list[LedgerEntry]:
    session.expire_all()
    return session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()


def test_a_signed_payment_intent_succeeded_credits_once_and_a_replay_changes_nothing(
    session, webhook_secret, webhook_client
):
    _, account = owner_and_account(session)
    payment = _pending_card_payment(session, account.id)
    payload = event("payment_intent.succeeded", _intent("pi_test_3ds"), "evt_1")

    first = post_event(webhook_client, payload)
    assert first.status_code == 200 and first.json() == {"received": True}
    replay = post_event(webhook_client, payload)
    assert replay.status_code == 200 and replay.json() == {"received": True}

    [entry] = _entries(session, account.id)
    assert (entry.amount_cents, entry.source, entry.idempotency_key) == (2500, "purchase", "stripe:pi:pi_test_3ds")
    assert entry.description == "Stripe Payment Intent pi_test_3ds via Add Usage Credits"
    assert ledger.balance_of(session, account.id) == 2500
    session.refresh(payment)
    assert payment.status == "succeeded" and payment.ledger_entry_id == entry.id
    [stored] = session.exec(select(StripeEvent)).all()
    assert stored.event_id == "evt_1" and stored.processed_at is not None


def test_another_event_for_the_same_intent_credits_nothing_more(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    _pending_card_payment(session, account.id)
    for event_id in ("evt_a", "evt_b"):
        assert (
            post_event(webhook_client, event("payment_intent.succeeded", _intent("pi_test_3ds"), event_id)).status_code
            == 200
        )
    assert len(_entries(session, account.id)) == 1 and ledger.balance_of(session, account.id) == 2500
    assert len(session.exec(select(StripeEvent)).all()) == 2


def test_an_auto_recharge_payment_is_credited_as_auto_recharge(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    _pending_card_payment(session, account.id, "pi_recharge", method="auto_recharge")
    post_event(webhook_client, event("payment_intent.succeeded", _intent("pi_recharge")))
    [entry] = _entries(session, account.id)
    assert entry.source == "auto_recharge"
    assert entry.description == "Stripe Payment Intent pi_recharge via Auto Recharge call."


def test_a_payment_that_lost_stripes_answer_is_found_by_its_metadata(session, localstripe, webhook_client):
    """Recorded failed (Stripe's answer was lost), but Stripe charged: asked again, it confirms."""
    _, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    payment = Payment(
        account_id=account.id,
        amount_cents=2500,
        method="card",
        status="failed",
        idempotency_key="card:x",
        stripe_payment_method_id=card,
    )
    session.add(payment)
    session.commit()
    metadata = payments.metadata(payment, "usage_credits")
    charged = gateway.create_payment_intent(
        customer_id=customers.customer_for(session, account.id),
        payment_method_id=card,
        amount_cents=2500,
        idempotency_key="lost-answer",
        off_session=False,
        metadata=metadata,
    )
    session.commit()
    post_event(webhook_client, event("payment_intent.succeeded", stripe_intent(charged.id)))
    session.refresh(payment)
    assert payment.status == "succeeded" and payment.stripe_payment_intent_id == charged.id
    assert ledger.balance_of(session, account.id) == 2500


def test_payment_failed_marks_the_payment_and_moves_no_money(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    payment = _pending_card_payment(session, account.id)
    error = {"code": "card_declined", "message": "Your card was declined."}
    post_event(
        webhook_client,
        event(
            "payment_intent.payment_failed", _intent("pi_test_3ds", "requires_payment_method", last_payment_error=error)
        ),
    )
    session.refresh(payment)
    assert (payment.status, payment.failure_message) == ("failed", "Your card was declined.")
    assert _entries(session, account.id) == []


def test_an_event_for_an_unknown_intent_is_acknowledged_and_moves_no_money(session, webhook_secret, webhook_client):
    owner_and_account(session)
    assert post_event(webhook_client, event("payment_intent.succeeded", _intent("pi_elsewhere"))).status_code == 200
    assert session.exec(select(LedgerEntry)).all() == []


def test_an_event_for_a_payment_not_committed_yet_is_kept_and_applied_once_by_a_job(
    session, engine, webhook_secret, webhook_client
):
    _, account = owner_and_account(session)
    payment = Payment(account_id=account.id, amount_cents=2500, method="card", idempotency_key="card:early")
    intent = _intent("pi_early", metadata={"payment_id": payment.public_id, "account_id": str(account.id)})
    payload = event("payment_intent.succeeded", intent, event_id="evt_early")

    response = post_event(webhook_client, payload)
    assert response.status_code == 200 and response.json() == {"received": True, "deferred": True}
    (kept,) = session.exec(select(StripeEvent)).all()
    assert kept.event_id == "evt_early" and kept.processed_at is None
    assert _entries(session, account.id) == []
    # While the payment is still not there, the job fails and is tried again later.
    session.commit()
    run_due_jobs(engine, now=utcnow)
    assert _entries(session, account.id) == []

    session.add(payment)
    account_of(session, account.id).stripe_customer_id = CUSTOMER
    session.commit()
    run_due_jobs(engine, now=lambda: utcnow() + timedelta(minutes=5))
    assert post_event(webhook_client, payload).status_code == 200  # Stripe's own redelivery changes nothing
    session.expire_all()
    assert [(e.source, e.amount_cents) for e in _entries(session, account.id)] == [("purchase", 2500)]
    session.refresh(payment)
    assert (payment.status, payment.stripe_payment_intent_id) == ("succeeded", "pi_early")
    assert session.exec(select(StripeEvent)).one().processed_at is not None


def test_a_redelivered_event_applies_a_kept_one_at_once(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    payment = Payment(account_id=account.id, amount_cents=2500, method="card", idempotency_key="card:early")
    intent = _intent("pi_early", metadata={"payment_id": payment.public_id, "account_id": str(account.id)})
    payload = event("payment_intent.succeeded", intent, event_id="evt_early")
    assert post_event(webhook_client, payload).json() == {"received": True, "deferred": True}

    session.add(payment)
    account_of(session, account.id).stripe_customer_id = CUSTOMER
    session.commit()
    assert post_event(webhook_client, payload).json() == {"received": True}
    assert post_event(webhook_client, payload).json() == {"received": True}
    session.expire_all()
    assert [(e.source, e.amount_cents) for e in _entries(session, account.id)] == [("purchase", 2500)]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda payload: signature(payload, secret="whsec_forged"), id="forged"),
        pytest.param(lambda payload: signature(payload, timestamp=int(time.time()) - 3600), id="stale"),
        pytest.param(lambda payload: "t=1,v1=", id="garbage"),
    ],
)
def test_forged_or_stale_signatures_get_400_and_store_nothing(session, webhook_secret, webhook_client, header):
    _, account = owner_and_account(session)
    _pending_card_payment(session, account.id)
    payload = event("payment_intent.succeeded", _intent("pi_test_3ds"))
    response = post_event(webhook_client, payload, header(payload))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    unsigned = webhook_client.post("/api/webhooks/stripe", content=payload)
    assert unsigned.status_code == 400
    assert session.exec(select(StripeEvent)).all() == [] and _entries(session, account.id) == []


def test_a_signed_checkout_session_completed_credits_once(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    payment = Payment(
        account_id=account.id,
        amount_cents=10_000,
        method="crypto",
        stripe_checkout_session_id="cs_test_1",
        idempotency_key="crypto:1",
    )
    session.add(payment)
    account_of(session, account.id).stripe_customer_id = CUSTOMER
    session.commit()
    checkout = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 10_000,
        "currency": "usd",
        "customer": CUSTOMER,
        "metadata": {},
    }
    for event_id in ("evt_cs_1", "evt_cs_1", "evt_cs_2"):
        assert post_event(webhook_client, event("checkout.session.completed", checkout, event_id)).status_code == 200
    [entry] = _entries(session, account.id)
    assert (entry.amount_cents, entry.idempotency_key) == (10_000, "stripe:cs:cs_test_1")
    session.refresh(payment)
    assert payment.status == "succeeded"


def test_an_unpaid_checkout_session_credits_nothing(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    session.add(
        Payment(
            account_id=account.id,
            amount_cents=10_000,
            method="crypto",
            stripe_checkout_session_id="cs_test_2",
            idempotency_key="crypto:2",
        )
    )
    session.commit()
    checkout = {"id": "cs_test_2", "object": "checkout.session", "payment_status": "unpaid", "metadata": {}}
    post_event(webhook_client, event("checkout.session.completed", checkout))
    assert _entries(session, account.id) == []


def test_success_seen_in_the_request_then_by_webhook_credits_once(session, localstripe, webhook_client):
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    result = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="req-w")
    session.commit()
    assert result.status == "succeeded"

    intent = stripe_intent(result.payment_intent_id)
    assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    assert len(_entries(session, account.id)) == 1 and ledger.balance_of(session, account.id) == 2500


def test_a_setup_intent_event_moves_no_money(session, webhook_secret, webhook_client):
    owner_and_account(session)
    setup_intent = {
        "id": "seti_1",
        "object": "setup_intent",
        "status": "succeeded",
        "customer": "cus_1",
        "payment_method": "pm_1",
    }
    assert post_event(webhook_client, event("setup_intent.succeeded", setup_intent)).status_code == 200
    assert session.exec(select(LedgerEntry)).all() == [] and session.exec(select(StripeEvent)).one().processed_at


@pytest.mark.parametrize(
    "crafted",
    [
        pytest.param({"amount": 250_000}, id="amount"),
        pytest.param({"currency": "eur"}, id="currency"),
        pytest.param({"customer": "cus_someone_else"}, id="customer"),
        pytest.param({"customer": None}, id="no customer"),
        pytest.param({"id": "pi_another"}, id="intent id"),
    ],
)
def test_an_intent_that_is_not_what_we_asked_stripe_for_moves_no_money_and_is_logged(
    session, webhook_secret, webhook_client, caplog, crafted
):
    _, account = owner_and_account(session)
    payment = _pending_card_payment(session, account.id)
    # Our payment's metadata, so that even an event for another intent finds the payment.
    intent = {**_intent("pi_test_3ds", metadata=payments.metadata(payment, "usage_credits")), **crafted}
    for kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        assert post_event(webhook_client, event(kind, intent)).status_code == 200
    assert _entries(session, account.id) == []
    session.refresh(payment)
    assert (payment.status, payment.stripe_payment_intent_id) == ("requires_action", "pi_test_3ds")
    assert caplog.text.count(f"does not match payment {payment.public_id}") == 2
    assert WEBHOOK_SECRET not in caplog.text


def test_a_failed_payment_is_not_credited_by_an_event_stripe_does_not_confirm(
    session, localstripe, webhook_client, caplog
):
    actor, account = owner_and_account(session)
    card = save_card(session, account, raw_card(localstripe, "4000000000000341"))
    declined = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="req-d")
    session.commit()
    assert declined.status == "failed"
    customer = customers.customer_for(session, account.id)
    at_stripe = gateway.find_payment_intent(customer, declined.payment_id, utcnow() - timedelta(minutes=1))
    assert at_stripe is not None and at_stripe.status == "requires_payment_method"
    session.commit()

    # Everything as we asked Stripe for, but Stripe says the intent did not succeed.
    crafted = {**stripe_intent(at_stripe.id), "status": "succeeded"}
    assert post_event(webhook_client, event("payment_intent.succeeded", crafted)).status_code == 200
    assert _entries(session, account.id) == []
    assert session.exec(select(Payment.status)).one() == "failed"
    assert "Stripe does not confirm" in caplog.text


def test_a_status_never_moves_back_on_a_late_event(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    payment = _pending_card_payment(session, account.id)
    error = {"message": "Your card was declined."}
    failed = _intent("pi_test_3ds", "requires_payment_method", last_payment_error=error)
    assert post_event(webhook_client, event("payment_intent.payment_failed", failed)).status_code == 200
    session.expire_all()
    assert session.get(Payment, (payment.account_id, payment.id)).status == "failed"
    # A late report that the intent waits for 3-D Secure (the request's answer, delayed).
    payments.set_status(session, session.get(Payment, (payment.account_id, payment.id)), "requires_action")
    session.commit()
    session.expire_all()
    assert session.get(Payment, (payment.account_id, payment.id)).status == "failed"


def test_a_body_over_256_kib_is_refused_with_413_before_it_is_read(session, webhook_secret, webhook_client):
    _, account = owner_and_account(session)
    _pending_card_payment(session, account.id)
    intent = _intent("pi_test_3ds", padding="x" * (256 * 1024))
    payload = event("payment_intent.succeeded", intent)
    response = post_event(webhook_client, payload)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the cap holds for what arrives
        yield from (payload[n : n + 65536].encode() for n in range(0, len(payload), 65536))

    streamed = webhook_client.post(
        "/api/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": signature(payload)}
    )
    assert streamed.status_code == 413
    assert session.exec(select(StripeEvent)).all() == [] and _entries(session, account.id) == []
