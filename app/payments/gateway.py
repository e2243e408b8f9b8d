"""The Stripe gateway: the only module that imports `stripe`. The same calls talk to real Stripe
or to localstripe (settings.stripe_api_base). Services get plain dataclasses and our own errors,
never Stripe types. Every call that can move money carries an idempotency key."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

import stripe

from app import metrics
from app.config import get_settings
from app.errors import DomainError, changes_refused

stripe.enable_telemetry = False

# Every amount we ask Stripe for is in US dollars.
CURRENCY = "usd"


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused the request for a reason that is not the card's."""

    status_code = 502
    code = "payment_provider_error"


class CardDeclined(PaymentProviderError):
    """The card was refused; `message` is the card's decline message, fit to show the payer.
    `authentication_required`: an off-session charge that the bank wants 3-D Secure for."""

    status_code = 402
    code = "card_declined"

    def __init__(self, message: str, *, payment_intent_id: str = "", authentication_required: bool = False):
        super().__init__(message)
        self.payment_intent_id = payment_intent_id
        self.authentication_required = authentication_required


class PaymentOutcomeUnknown(PaymentProviderError):
    """Stripe timed out or failed inside (5xx): the request may have been carried out. The payment
    is recorded as not gone through; should Stripe have charged after all, its webhook finds the
    payment through the intent's metadata and applies it then."""

    MESSAGE = (
        "Stripe did not answer in time. If you were charged, the payment is applied as soon as Stripe confirms it."
    )

    def __init__(self):
        super().__init__(self.MESSAGE)


class InvalidWebhook(DomainError):
    code = "invalid_signature"


@dataclass(frozen=True)
class Intent:
    """What we need of a PaymentIntent."""

    id: str
    status: str
    amount_cents: int
    client_secret: str = ""
    failure_message: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    currency: str = CURRENCY
    customer: str = ""


@dataclass(frozen=True)
class Card:
    """A saved payment method: a card, or a SEPA Direct Debit bank account (kind "sepa_debit",
    with the bank code and the IBAN's last four digits)."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    holder_name: str
    kind: str = "card"
    bank_code: str = ""
    customer: str = ""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class CheckoutPayment:
    """How a Checkout Session's payment stands: payment_status is paid, unpaid or
    no_payment_required."""

    id: str
    payment_status: str
    amount_cents: int
    currency: str
    customer: str


@dataclass(frozen=True)
class TaxId:
    """A customer tax ID; status is Stripe's verification status (pending, verified,
    unverified, unavailable)."""

    id: str
    status: str


@lru_cache(maxsize=4)
def _build_client(secret_key: str, api_base: str) -> stripe.StripeClient:
    # Fail fast: a page waits on these calls. Retries reuse the idempotency key, so they are safe.
    http_client = stripe.RequestsClient(timeout=(5, 30))
    if api_base:
        return stripe.StripeClient(
            secret_key, base_addresses={"api": api_base}, max_network_retries=1, http_client=http_client
        )
    return stripe.StripeClient(secret_key, max_network_retries=2, http_client=http_client)


def client() -> stripe.StripeClient:
    settings = get_settings()
    return _build_client(settings.stripe_secret_key, settings.stripe_api_base)


def _call(
    method: Callable[..., Any], params: dict[str, Any], idempotency_key: str | None = None, *, missing_ok: bool = False
) -> dict[str, Any]:
    """Run one Stripe call and hand back a plain dict; Stripe errors become ours. With
    missing_ok, an object Stripe does not have (404) gives {}. Every call is counted by operation
    and outcome (ok, not_found, declined, refused, unknown) with its latency."""
    operation = getattr(method.func if isinstance(method, partial) else method, "__qualname__", "unknown")
    refusal = changes_refused.get()
    if refusal is not None and not operation.endswith((".retrieve", ".list")):
        raise refusal
    outcome = "unknown"
    started = time.perf_counter()
    try:
        result = _raising_ours(method, params, idempotency_key, missing_ok)
        outcome = "ok" if result else "not_found"
        return result
    except CardDeclined:
        outcome = "declined"
        raise
    except PaymentOutcomeUnknown:
        raise
    except PaymentProviderError:
        outcome = "refused"
        raise
    finally:
        metrics.record_stripe_call(operation, outcome, time.perf_counter() - started)


def _raising_ours(
    method: Callable[..., Any], params: dict[str, Any], idempotency_key: str | None, missing_ok: bool
) -> dict[str, Any]:
    options = {"idempotency_key": idempotency_key} if idempotency_key else None
    try:
        return method(params=params, options=options).to_dict()
    except stripe.InvalidRequestError as exc:
        if missing_ok and exc.http_status == 404:
            return {}
        raise PaymentProviderError(exc.user_message or "The payment provider refused the request.") from exc
    except stripe.CardError as exc:
        body = exc.json_body if isinstance(exc.json_body, dict) else {}
        error = body.get("error") or {}
        intent = error.get("payment_intent") or {}
        raise CardDeclined(
            exc.user_message or "Your card was declined.",
            payment_intent_id=intent.get("id", ""),
            authentication_required="authentication_required" in (error.get("code"), error.get("decline_code")),
        ) from exc
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        raise PaymentOutcomeUnknown() from exc
    except stripe.StripeError as exc:
        raise PaymentProviderError(exc.user_message or "The payment provider refused the request.") from exc


def create_customer(*, name: str, metadata: dict[str, str], idempotency_key: str) -> str:
    """A new Stripe customer; returns its id. A repeated idempotency key returns the same one."""
    customer = _call(
        client().v1.customers.create, {"name": name, "metadata": metadata}, idempotency_key=idempotency_key
    )
    return str(customer["id"])


def update_customer_address(customer_id: str, *, name: str, address: dict[str, str]) -> None:
    """The invoice address on the Stripe customer (keys line1, line2, city, postal_code, state,
    country), with the company name as the customer's name."""
    _call(partial(client().v1.customers.update, customer_id), {"name": name, "address": address})


def create_tax_id(customer_id: str, *, type: str, value: str, idempotency_key: str) -> TaxId:
    """Add a tax ID to the customer; Stripe answers with its verification status."""
    tax_id = _call(
        partial(client().v1.customers.tax_ids.create, customer_id),
        {"type": type, "value": value},
        idempotency_key=idempotency_key,
    )
    return _tax_id(tax_id)


def delete_tax_id(customer_id: str, tax_id: str) -> None:
    """Remove a tax ID from the customer; one Stripe no longer has counts as removed."""
    _call(partial(client().v1.customers.tax_ids.delete, customer_id, tax_id), {}, missing_ok=True)


def create_setup_intent(customer_id: str, method_type: str = "card") -> str:
    """A SetupIntent for Stripe.js (confirmCardSetup, or confirmSepaDebitSetup for "sepa_debit");
    returns its client secret."""
    intent = _call(
        client().v1.setup_intents.create,
        {"customer": customer_id, "usage": "off_session", "payment_method_types": [method_type]},
    )
    return intent["client_secret"]


def retrieve_payment_method(payment_method_id: str) -> Card:
    return _card(_call(partial(client().v1.payment_methods.retrieve, payment_method_id), {}))


def attach_payment_method(customer_id: str, payment_method_id: str) -> Card:
    """Attach a card to the customer. Needed after confirmCardSetup on localstripe (which does
    not attach); on real Stripe the card is already attached and attaching again is harmless."""
    method = _call(
        partial(client().v1.payment_methods.attach, payment_method_id),
        {"customer": customer_id},
    )
    return _card(method)


def detach_payment_method(payment_method_id: str) -> None:
    _call(partial(client().v1.payment_methods.detach, payment_method_id), {})


def set_billing_name(payment_method_id: str, name: str) -> None:
    """The name on the card, for cards attached by id (such as the demo card)."""
    _call(partial(client().v1.payment_methods.update, payment_method_id), {"billing_details": {"name": name}})


def set_default_payment_method(customer_id: str, payment_method_id: str) -> None:
    """The default card is the customer's invoice_settings.default_payment_method ("" clears it)."""
    _call(
        partial(client().v1.customers.update, customer_id),
        {"invoice_settings": {"default_payment_method": payment_method_id}},
    )


def list_cards(customer_id: str) -> tuple[list[Card], str]:
    """The customer's cards and the id of the default one ("" when none)."""
    customer = _call(partial(client().v1.customers.retrieve, customer_id), {})
    default = (customer.get("invoice_settings") or {}).get("default_payment_method") or ""
    if isinstance(default, dict):
        default = default["id"]
    listing = _call(client().v1.payment_methods.list, {"customer": customer_id, "type": "card", "limit": 100})
    return [_card(m) for m in listing["data"]], default


def create_payment_intent(
    *,
    customer_id: str,
    payment_method_id: str,
    amount_cents: int,
    idempotency_key: str,
    off_session: bool,
    metadata: dict[str, str],
    method_type: str = "card",
) -> Intent:
    """Create and confirm in one call: localstripe answers 500 to a later confirm with a
    payment_method. Naming the method's type means no return_url is needed on real Stripe. A SEPA
    Direct Debit comes back "processing" and settles later (webhook).
    A declined card raises CardDeclined; a card that needs 3-D Secure comes back requires_action
    (on-session) or is declined with authentication_required (off-session)."""
    intent = _call(
        client().v1.payment_intents.create,
        {
            "amount": amount_cents,
            "currency": CURRENCY,
            "customer": customer_id,
            "payment_method": payment_method_id,
            "payment_method_types": [method_type],
            "confirm": True,
            "off_session": off_session,
            "metadata": metadata,
        },
        idempotency_key=idempotency_key,
    )
    return _intent(intent)


def retrieve_payment_intent(payment_intent_id: str) -> Intent:
    return _intent(_call(partial(client().v1.payment_intents.retrieve, payment_intent_id), {}))


def payment_intent_customer(payment_intent_id: str) -> str:
    """The customer of a PaymentIntent; "" for an intent Stripe does not have."""
    intent = _call(partial(client().v1.payment_intents.retrieve, payment_intent_id), {}, missing_ok=True)
    return id_of(intent.get("customer"))


@dataclass(frozen=True)
class Refunded:
    charge_id: str
    # What is refunded of the charge in all, this refund included (Stripe's amount_refunded).
    charge_refunded_cents: int


def refund_payment_intent(payment_intent_id: str, amount_cents: int, *, idempotency_key: str) -> Refunded:
    """Refund part or all of a succeeded intent's charge (once per idempotency key)."""
    refund = _call(
        client().v1.refunds.create, {"payment_intent": payment_intent_id, "amount": amount_cents}, idempotency_key
    )
    charge_id = id_of(refund.get("charge"))
    charge = _call(partial(client().v1.charges.retrieve, charge_id), {})
    return Refunded(charge_id, int(charge.get("amount_refunded") or 0))


def cancel_payment_intent(payment_intent_id: str) -> Intent:
    """Cancel an intent that was never completed (such as an abandoned 3-D Secure step), so it
    can no longer charge."""
    return _intent(_call(partial(client().v1.payment_intents.cancel, payment_intent_id), {}))


def find_payment_intent(customer_id: str, payment_id: str, created_since: datetime) -> Intent | None:
    """The customer's intent whose metadata names our payment, if Stripe has one: how a rerun
    learns whether a call lost in a crash reached Stripe. localstripe filters lists by neither
    customer nor date (it answers 400), so there every intent is listed and filtered here."""
    params: dict[str, Any] = {"limit": 100}
    if not get_settings().uses_localstripe:
        params.update(customer=customer_id, created={"gte": int(created_since.timestamp()) - 300})
    while True:
        page = _call(client().v1.payment_intents.list, params)
        for intent in page["data"]:
            if intent.get("customer") == customer_id and (intent.get("metadata") or {}).get("payment_id") == payment_id:
                return _intent(intent)
        if not page.get("has_more") or not page["data"]:
            return None
        params["starting_after"] = page["data"][-1]["id"]


# How long an answer about the account's capabilities is kept: asked on page loads, it changes rarely.
CAPABILITY_TTL_SECONDS = 600
_capabilities: dict[tuple[str, str], tuple[float, bool]] = {}


def crypto_payments_enabled() -> bool:
    """Whether the Stripe account can take crypto: its `crypto_payments` capability is active.
    localstripe has no accounts API, and an account Stripe does not answer for counts as unable;
    the answer is kept CAPABILITY_TTL_SECONDS per key and address."""
    settings = get_settings()
    cache_key = (settings.stripe_secret_key, settings.stripe_api_base)
    cached = _capabilities.get(cache_key)
    if cached is not None and time.monotonic() - cached[0] < CAPABILITY_TTL_SECONDS:
        return cached[1]
    try:
        account = _call(client().v1.accounts.retrieve_current, {})
    except PaymentProviderError:
        enabled = False
    else:
        enabled = (account.get("capabilities") or {}).get("crypto_payments") == "active"
    _capabilities[cache_key] = (time.monotonic(), enabled)
    return enabled


def create_crypto_checkout_session(
    *,
    customer_id: str,
    amount_cents: int,
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> CheckoutSession:
    """A hosted Checkout page that only offers Stripe's crypto payment method (settled in USD).
    Replaying the idempotency key returns the same session, hence the same URL."""
    checkout = _call(
        client().v1.checkout.sessions.create,
        {
            "mode": "payment",
            "payment_method_types": ["crypto"],
            "customer": customer_id,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": CURRENCY,
                        "unit_amount": amount_cents,
                        "product_data": {"name": "Usage credits"},
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
        },
        idempotency_key=idempotency_key,
    )
    return CheckoutSession(id=checkout["id"], url=checkout["url"])


def retrieve_checkout_session(checkout_session_id: str) -> CheckoutPayment:
    checkout = _call(partial(client().v1.checkout.sessions.retrieve, checkout_session_id), {})
    return CheckoutPayment(
        id=checkout["id"],
        payment_status=checkout.get("payment_status") or "",
        amount_cents=checkout.get("amount_total") or 0,
        currency=checkout.get("currency") or "",
        customer=id_of(checkout.get("customer")),
    )


def verify_webhook(payload: bytes, sig_header: str) -> dict[str, Any]:
    """The event, once its Stripe-Signature proves it came from Stripe within the tolerance."""
    try:
        event = stripe.Webhook.construct_event(payload, sig_header, get_settings().stripe_webhook_secret)
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise InvalidWebhook("Invalid Stripe signature.") from exc
    return event.to_dict()


def _card(method: dict[str, Any]) -> Card:
    holder_name = (method.get("billing_details") or {}).get("name") or ""
    customer = method.get("customer") or ""
    if isinstance(customer, dict):
        customer = customer["id"]
    if method.get("type") == "sepa_debit":
        bank = method.get("sepa_debit") or {}
        return Card(
            id=method["id"],
            brand="",
            last4=bank.get("last4", ""),
            exp_month=0,
            exp_year=0,
            holder_name=holder_name,
            kind="sepa_debit",
            bank_code=bank.get("bank_code") or "",
            customer=customer,
        )
    card = method.get("card") or {}
    return Card(
        id=method["id"],
        brand=card.get("brand", ""),
        last4=card.get("last4", ""),
        exp_month=card.get("exp_month", 0),
        exp_year=card.get("exp_year", 0),
        holder_name=holder_name,
        customer=customer,
    )


def _tax_id(tax_id: dict[str, Any]) -> TaxId:
    return TaxId(id=tax_id["id"], status=(tax_id.get("verification") or {}).get("status") or "pending")


def _intent(intent: dict[str, Any]) -> Intent:
    error = intent.get("last_payment_error") or {}
    return Intent(
        id=intent["id"],
        status=intent["status"],
        amount_cents=intent["amount"],
        client_secret=intent.get("client_secret") or "",
        failure_message=error.get("message") or "",
        metadata=dict(intent.get("metadata") or {}),
        currency=intent.get("currency") or "",
        customer=id_of(intent.get("customer")),
    )


def id_of(value: Any) -> str:
    """The id of an expandable field: Stripe sends either the id or the expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")
