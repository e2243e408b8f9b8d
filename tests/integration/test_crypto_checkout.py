"""Crypto top-ups through Stripe Checkout. localstripe has no Checkout Sessions, so a tiny local
stand-in for the Stripe API records what we send and answers like Stripe."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from sqlmodel import select

from app.config import get_settings
from app.errors import ValidationFailed
from app.models import LedgerEntry, Payment
from app.services import ledger, topups
from tests.factories import owner_and_account
from tests.stripe_fixtures import event, point_stripe_at, post_event


class FakeStripe(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = []

    def do_POST(self):
        form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
        self.requests.append((self.path, form, dict(self.headers)))
        key = self.headers.get("Idempotency-Key", "")
        if self.path == "/v1/customers":
            body = {"id": "cus_fake", "object": "customer", "name": form.get("name")}
        elif self.path == "/v1/checkout/sessions":
            # Like Stripe: the same idempotency key answers the same session.
            session_id = f"cs_test_{abs(hash(key)) % 10**8}"
            body = {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            }
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/v1/account":
            self.send_error(404)
            return
        # An account that can take crypto.
        data = json.dumps({"id": "acct_fake", "object": "account", "capabilities": {"crypto_payments": "active"}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_stripe(monkeypatch):
    FakeStripe.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStripe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    point_stripe_at(monkeypatch, f"http://127.0.0.1:{server.server_port}")
    yield FakeStripe.requests
    server.shutdown()
    server.server_close()
    get_settings.cache_clear()  # read again once monkeypatch has put the environment back


def test_crypto_checkout_is_limited_to_crypto_and_credits_once_when_paid(session, fake_stripe, webhook_client):
    actor, account = owner_and_account(session)

    checkout = topups.start_crypto_topup(session, actor, amount_text="120.50", request_key="req-c")
    session.commit()
    [(path, form, headers)] = [r for r in fake_stripe if r[0] == "/v1/checkout/sessions"]
    payment = session.exec(select(Payment)).one()
    assert checkout.url == f"https://checkout.stripe.com/c/pay/{payment.stripe_checkout_session_id}"
    assert checkout.payment_id == payment.public_id and payment.method == "crypto" and payment.amount_cents == 12050
    assert form["payment_method_types[0]"] == "crypto" and "payment_method_types[1]" not in form
    assert form["mode"] == "payment" and form["customer"] == "cus_fake"
    assert form["line_items[0][price_data][unit_amount]"] == "12050"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][quantity]"] == "1"
    assert form["metadata[payment_id]"] == payment.public_id
    assert form["metadata[account_id]"] == str(account.id)
    assert form["success_url"].endswith("/billing/add-usage-credits?crypto=success")
    assert headers["Idempotency-Key"] == f"crypto:{payment.public_id}"

    again = topups.start_crypto_topup(session, actor, amount_text="120.50", request_key="req-c")
    assert again == checkout and len(session.exec(select(Payment)).all()) == 1
    session.commit()  # the webhook below writes in its own transaction

    completed = {
        "id": payment.stripe_checkout_session_id,
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 12050,
        "currency": "usd",
        "customer": "cus_fake",
        "metadata": {"payment_id": payment.public_id, "account_id": str(account.id)},
    }
    for event_id in ("evt_c1", "evt_c1", "evt_c2"):
        assert post_event(webhook_client, event("checkout.session.completed", completed, event_id)).status_code == 200
    session.expire_all()
    [entry] = session.exec(select(LedgerEntry)).all()
    assert (entry.account_id, entry.amount_cents, entry.source) == (account.id, 12050, "purchase")
    assert (
        entry.description
        == f"Stripe Checkout Session {payment.stripe_checkout_session_id} via Add Usage Credits (crypto)"
    )
    assert ledger.balance_of(session, account.id) == 12050
    assert session.get(Payment, (payment.account_id, payment.id)).status == "succeeded"


def test_crypto_is_offered_where_the_stripe_account_can_take_it(session, fake_stripe):
    actor, _ = owner_and_account(session)
    assert topups.crypto_unavailable(session, actor) == ""


def test_on_localstripe_crypto_is_not_offered_and_says_why_without_suggesting_a_charge(session, localstripe):
    actor, _ = owner_and_account(session)
    assert topups.crypto_unavailable(session, actor) == topups.CRYPTO_ON_LOCALSTRIPE
    with pytest.raises(ValidationFailed) as refused:
        topups.start_crypto_topup(session, actor, amount_text="25", request_key="req-l")
    assert refused.value.field == "payment_method" and refused.value.message == topups.CRYPTO_ON_LOCALSTRIPE
    assert "if you were charged" not in refused.value.message
    assert session.exec(select(Payment)).all() == []


def test_crypto_amounts_are_checked_before_stripe_is_called(session, fake_stripe):
    actor, _ = owner_and_account(session)
    with pytest.raises(ValidationFailed) as refused:
        topups.start_crypto_topup(session, actor, amount_text="5000.01", request_key="req-d")
    assert refused.value.field == "amount" and fake_stripe == []


def test_a_refunded_crypto_payment_takes_its_credits_back_once(session, fake_stripe, webhook_client):
    actor, account = owner_and_account(session)
    topups.start_crypto_topup(session, actor, amount_text="40", request_key="req-r")
    session.commit()
    payment = session.exec(select(Payment)).one()
    session.commit()  # the webhook writes in its own transaction
    completed = {
        "id": payment.stripe_checkout_session_id,
        "object": "checkout.session",
        "payment_status": "paid",
        "payment_intent": "pi_crypto_1",
        "amount_total": 4000,
        "currency": "usd",
        "customer": "cus_fake",
        "metadata": {"payment_id": payment.public_id, "account_id": str(account.id)},
    }
    assert post_event(webhook_client, event("checkout.session.completed", completed)).status_code == 200
    charge = {
        "id": "ch_crypto_1",
        "object": "charge",
        "payment_intent": "pi_crypto_1",
        "amount": 4000,
        "amount_refunded": 4000,
        "refunded": True,
        "currency": "usd",
        "customer": "cus_fake",
    }
    for _ in range(2):
        assert post_event(webhook_client, event("charge.refunded", charge)).status_code == 200
    session.expire_all()
    entries = session.exec(select(LedgerEntry).order_by(LedgerEntry.id)).all()
    assert [(e.amount_cents, e.source) for e in entries] == [(4000, "purchase"), (-4000, "refund")]
    assert ledger.balance_of(session, account.id) == 0
    assert session.get(Payment, (payment.account_id, payment.id)).status == "refunded"
