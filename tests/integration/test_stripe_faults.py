"""Stripe failing under a top-up: a proxy in front of the real localstripe answers 500 or stalls
past the client's timeout on the PaymentIntent call, after or before passing it on. Whatever
Stripe did, money and credits agree once its webhook arrives: no credit without a payment, no
payment without a credit, each credited once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import stripe
from sqlmodel import select

import app.jobs.handlers  # noqa: F401  registers the janitor's jobs
from app.config import get_settings
from app.jobs.queue import run_due_jobs
from app.models import LedgerEntry, Payment, utcnow
from app.payments import gateway
from app.services import customers, ledger, payments, reconciliation, topups
from tests.factories import owner_and_account
from tests.stripe_fixtures import event, payment_intents, post_event, save_card

CLIENT_READ_TIMEOUT = 1.0


class StripeFaultProxy:
    """Passes every request on to localstripe, except that POST /v1/payment_intents fails the way
    `fault` says. Like Stripe, it answers a repeated Idempotency-Key with the first result (and
    localstripe does not), so the client's own retry cannot charge twice."""

    def __init__(self, upstream: str):
        self.fault = ""
        self.forwarded_intents = 0
        self.results: dict[str, tuple[int, bytes]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                creating_intent = (
                    self.command == "POST" and self.path.startswith("/v1/payment_intents") and self.path.count("/") == 2
                )
                key = self.headers.get("Idempotency-Key", "")
                if creating_intent and proxy.fault == "500 before":
                    return self._answer(500, b'{"error": {"type": "api_error", "message": "Internal error"}}')
                if creating_intent and key in proxy.results:
                    status, content = proxy.results[key]
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    response = httpx.request(self.command, upstream + self.path, headers=headers, content=body)
                    status, content = response.status_code, response.content
                    if creating_intent:
                        proxy.forwarded_intents += 1
                        proxy.results[key] = (status, content)
                if creating_intent and proxy.fault == "500 after":
                    return self._answer(500, b'{"error": {"type": "api_error", "message": "Internal error"}}')
                if creating_intent and proxy.fault == "timeout":
                    time.sleep(CLIENT_READ_TIMEOUT * 2)
                self._answer(status, content)

            def _answer(self, status: int, content: bytes):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    if status >= 500:
                        self.send_header("Stripe-Should-Retry", "false")  # what Stripe sends with most 500s
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            do_GET = do_POST = do_DELETE = _relay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxied(session, localstripe, monkeypatch):
    """An owner with a saved card, and the gateway talking to Stripe through the fault proxy."""
    actor, account = owner_and_account(session)
    card = save_card(session, account, "pm_card_visa")
    proxy = StripeFaultProxy(localstripe)
    client = stripe.StripeClient(
        get_settings().stripe_secret_key,
        base_addresses={"api": proxy.url},
        max_network_retries=1,
        http_client=stripe.RequestsClient(timeout=(2, CLIENT_READ_TIMEOUT)),
    )
    monkeypatch.setattr(gateway, "client", lambda: client)
    yield actor, account, card, proxy
    proxy.close()


def _intents_at_stripe(localstripe: str, payment: Payment) -> list[dict]:
    return [i for i in payment_intents(localstripe) if (i.get("metadata") or {}).get("payment_id") == payment.public_id]


def _credits(session, account_id: int) -> list[LedgerEntry]:
    return session.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()


@pytest.mark.parametrize("fault", ["500 after", "timeout"])
def test_stripe_charged_but_the_answer_was_lost_credits_once_when_the_webhook_arrives(
    session, proxied, localstripe, webhook_client, fault
):
    actor, account, card, proxy = proxied
    proxy.fault = fault
    result = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    session.commit()
    assert (result.status, result.message) == ("failed", gateway.PaymentOutcomeUnknown.MESSAGE)
    assert ledger.balance_of(session, account.id) == 0 and _credits(session, account.id) == []

    payment = session.exec(select(Payment)).one()
    (intent,) = _intents_at_stripe(localstripe, payment)  # charged once, the client's retry included
    assert intent["status"] == "succeeded" and proxy.forwarded_intents == 1
    session.commit()  # the webhook writes on its own connection

    assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200  # Stripe resends
    session.expire_all()
    assert ledger.balance_of(session, account.id) == 2500 == ledger.ledger_sum(session, account.id)
    assert len(_credits(session, account.id)) == 1
    assert session.get(Payment, (payment.account_id, payment.id)).status == "succeeded"


def test_stripe_failing_before_it_charged_leaves_neither_payment_nor_credit(session, proxied, localstripe):
    actor, account, card, proxy = proxied
    proxy.fault = "500 before"
    result = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r2")
    session.commit()
    assert result.status == "failed"
    payment = session.exec(select(Payment)).one()
    assert _intents_at_stripe(localstripe, payment) == [] and proxy.forwarded_intents == 0
    assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)

    proxy.fault = ""  # Stripe is back: a new attempt is a new payment, charged and credited once
    again = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r3")
    session.commit()
    assert again.status == "succeeded"
    assert ledger.balance_of(session, account.id) == 2500 and len(_credits(session, account.id)) == 1


def _sweep_and_run(session, engine) -> int:
    """One janitor sweep, then every job it enqueued."""
    found = reconciliation.sweep(session)
    session.commit()
    run_due_jobs(engine)
    session.expire_all()
    return found


@pytest.mark.parametrize("fault", ["500 after", "timeout"])
def test_the_janitor_credits_once_a_top_up_whose_answer_and_webhook_were_both_lost(
    session, engine, proxied, localstripe, webhook_client, fault
):
    actor, account, card, proxy = proxied
    proxy.fault = fault
    result = topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    session.commit()
    assert (result.status, result.message) == ("failed", gateway.PaymentOutcomeUnknown.MESSAGE)
    payment = session.exec(select(Payment)).one()
    assert payment.outcome_unknown_at is not None and payment.stripe_payment_intent_id is None
    (intent,) = _intents_at_stripe(localstripe, payment)
    proxy.fault = ""

    assert _sweep_and_run(session, engine) == 1
    payment = session.get(Payment, (payment.account_id, payment.id))
    assert (payment.status, payment.stripe_payment_intent_id, payment.outcome_unknown_at) == (
        "succeeded",
        intent["id"],
        None,
    )
    assert ledger.balance_of(session, account.id) == 2500 == ledger.ledger_sum(session, account.id)
    # Nothing is left to look at, and the webhook arriving late moves nothing more.
    assert _sweep_and_run(session, engine) == 0
    assert post_event(webhook_client, event("payment_intent.succeeded", intent)).status_code == 200
    session.expire_all()
    assert len(_credits(session, account.id)) == 1 and ledger.balance_of(session, account.id) == 2500


def test_the_janitor_fails_a_payment_stripe_never_created_with_the_reason(session, engine, proxied, localstripe):
    actor, account, card, proxy = proxied
    proxy.fault = "500 before"
    topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    session.commit()
    payment = session.exec(select(Payment)).one()
    assert payment.status == "failed" and payment.outcome_unknown_at is not None
    proxy.fault = ""

    # Until Stripe could still be carrying out a late call, the janitor only looks.
    assert _sweep_and_run(session, engine) == 1
    assert session.get(Payment, (payment.account_id, payment.id)).outcome_unknown_at is not None
    payment.created_at = utcnow() - timedelta(minutes=10)
    session.add(payment)
    session.commit()
    assert _sweep_and_run(session, engine) == 1
    payment = session.get(Payment, (payment.account_id, payment.id))
    assert (payment.status, payment.failure_message, payment.outcome_unknown_at) == (
        "failed",
        payments.NOT_REACHED_MESSAGE,
        None,
    )
    assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)
    assert _sweep_and_run(session, engine) == 0


def test_the_janitor_finds_by_its_metadata_a_charge_whose_request_crashed_before_recording_it(
    session, engine, proxied, localstripe
):
    """The process died after Stripe charged and before the intent id was stored: the payment is
    pending with no intent id, and no webhook ever came."""
    actor, account, card, proxy = proxied
    customer_id = customers.customer_for(session, account.id)
    payment, _ = payments.open_payment(
        session,
        account_id=account.id,
        amount_cents=4000,
        method="card",
        idempotency_key="card:crashed",
        payment_method_id=card,
        created_by_user_id=actor.user_id,
    )
    session.commit()
    gateway.create_payment_intent(
        customer_id=customer_id,
        payment_method_id=card,
        amount_cents=4000,
        idempotency_key="crashed",
        off_session=False,
        metadata=payments.metadata(payment, "usage_credits"),
        method_type="card",
    )
    assert _sweep_and_run(session, engine) == 0  # not yet: the request may still be under way
    payment.created_at = utcnow() - timedelta(minutes=10)
    session.add(payment)
    session.commit()

    assert _sweep_and_run(session, engine) == 1
    assert session.get(Payment, (payment.account_id, payment.id)).status == "succeeded"
    assert ledger.balance_of(session, account.id) == 4000 == ledger.ledger_sum(session, account.id)
    assert _sweep_and_run(session, engine) == 0
