"""Stripe for tests: localstripe in its own process for the session, signed webhook events,
and small builders (saved card)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.api import stripe_webhook
from app.config import PROJECT_ROOT, get_settings
from app.models import Account, Payment
from app.payments import gateway
from app.payments.localstripe import wait_until_up
from app.services import customers, payment_methods

# Moved to tests.factories; still importable from here.
from tests.factories import actor_for as actor_for
from tests.factories import owner_and_account as owner_and_account

WEBHOOK_SECRET = "whsec_test_ledgerdesk"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def point_stripe_at(monkeypatch: pytest.MonkeyPatch, api_base: str) -> None:
    """Settings are cached: change the environment they are read from, then drop the cache."""
    monkeypatch.setenv("STRIPE_API_BASE", api_base)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    """A private localstripe (own port, own state file) that the gateway talks to; its base URL."""
    port = free_port()
    state_file = tmp_path_factory.mktemp("localstripe") / "store.pickle"
    log = (state_file.parent / "localstripe.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "localstripe_server.py"),
            "--port",
            str(port),
            "--state-file",
            str(state_file),
            "--from-scratch",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://localhost:{port}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            wait_until_up(base_url, timeout=20)
            point_stripe_at(monkeypatch, base_url)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()
    get_settings.cache_clear()


@pytest.fixture
def webhook_secret(monkeypatch) -> str:
    """For tests that need no Stripe server: only the signing secret is set."""
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    get_settings.cache_clear()
    yield WEBHOOK_SECRET
    get_settings.cache_clear()


@pytest.fixture
def webhook_client(engine: Engine) -> TestClient:
    """The webhook router in a bare FastAPI app, writing to the test database."""
    app = FastAPI()
    app.include_router(stripe_webhook.router)
    app.dependency_overrides[stripe_webhook.webhook_engine] = lambda: engine
    with TestClient(app) as client:
        yield client


def signature(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header, made the way Stripe makes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(event_type: str, obj: dict, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    )


def post_event(client: TestClient, payload: str, header: str | None = None) -> httpx.Response:
    return client.post(
        "/api/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": header or signature(payload), "Content-Type": "application/json"},
    )


def stripe_intent(payment_intent_id: str) -> dict:
    """A PaymentIntent as Stripe has it (and as its webhook events carry it)."""
    return gateway.client().v1.payment_intents.retrieve(payment_intent_id).to_dict()


def webhook_reports_the_decline_first(
    monkeypatch: pytest.MonkeyPatch, webhook_client: TestClient, since: datetime
) -> None:
    """Off-session charges that decline do so as Stripe may: its payment_intent.payment_failed
    webhook (for the intent created since `since`) is handled before the API's answer arrives."""
    charge = gateway.create_payment_intent

    def decline_after_the_webhook(**kwargs):
        try:
            return charge(**kwargs)
        except gateway.CardDeclined:
            metadata = kwargs["metadata"]
            intent = gateway.find_payment_intent(kwargs["customer_id"], metadata["payment_id"], since)
            obj = {**stripe_intent(intent.id), "status": "requires_payment_method", "metadata": metadata}
            obj["last_payment_error"] = {"message": "Your card was declined."}
            assert post_event(webhook_client, event("payment_intent.payment_failed", obj)).status_code == 200
            raise

    monkeypatch.setattr(gateway, "create_payment_intent", decline_after_the_webhook)


def intent_for(
    session: Session, payment: Payment, status: str = "succeeded", intent_id: str | None = None, **extra
) -> dict:
    """A PaymentIntent event object describing exactly what we asked Stripe for with this payment
    (for tests without a Stripe server; the account gets a customer id if it has none)."""
    account = customers.account_of(session, payment.account_id)
    if not account.stripe_customer_id:
        account.stripe_customer_id = f"cus_test_{payment.account_id}"
        session.add(account)
        session.commit()
    return {
        "id": intent_id or payment.stripe_payment_intent_id,
        "object": "payment_intent",
        "amount": payment.amount_cents,
        "currency": "usd",
        "customer": account.stripe_customer_id,
        "status": status,
        "metadata": {"payment_id": payment.public_id, "account_id": str(payment.account_id)},
        **extra,
    }


def save_card(session: Session, account: Account, payment_method_id: str) -> str:
    """Attach a card the way the Payment Methods page does; the Stripe id of the saved card."""
    customer_id = customers.ensure_customer(session, account)
    card = gateway.attach_payment_method(customer_id, payment_method_id)
    gateway.set_default_payment_method(customer_id, card.id)
    payment_methods.sync_payment_methods(session, account.id)
    session.commit()
    return card.id


def raw_card(base_url: str, number: str) -> str:
    """A card from a raw test number, which only localstripe accepts (e.g. the 3-D Secure one)."""
    response = httpx.post(
        f"{base_url}/v1/payment_methods",
        auth=(get_settings().stripe_secret_key, ""),
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2030",
            "card[cvc]": "123",
        },
    )
    response.raise_for_status()
    return response.json()["id"]


def payment_intents(base_url: str) -> list[dict]:
    """Every PaymentIntent localstripe holds, all pages (it cannot filter by customer)."""
    intents: list[dict] = []
    params: dict = {"limit": 100}
    while True:
        page = httpx.get(
            f"{base_url}/v1/payment_intents", params=params, auth=(get_settings().stripe_secret_key, "")
        ).json()
        intents.extend(page["data"])
        if not page["has_more"]:
            return intents
        params["starting_after"] = page["data"][-1]["id"]
