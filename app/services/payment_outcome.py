"""What a page learns of a card payment it started: a credit purchase, an invoice, a plan change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class PaymentOutcome:
    """status: succeeded (applied, for a plan change) | requires_action | processing | failed.
    With requires_action the page passes client_secret to Stripe.js confirmCardPayment, then
    asks for the outcome again once the browser's step is done."""

    status: str
    amount_cents: int
    payment_intent_id: str = ""
    client_secret: str = ""
    message: str = ""
