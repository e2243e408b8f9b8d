"""One card payment in the page, mixed into the states that charge a saved card (Add Usage
Credits, Invoices, Plans): the request key that makes one attempt one payment, the 3-D Secure
step in the browser, and the server's word on how it ended.

    with acting(self, Permission.BILLING_MANAGE) as (actor, session):
        result = topups.start_card_topup(..., request_key=self._request_key)
    return self._charged(result)

`_charged` hands a payment that needs authentication to Stripe.js (`confirm_payment_script`),
whose outcome comes back to `payment_confirmed`; that asks the page's `_finish_payment` how it
ended. The page says what an ended payment means (`_payment_ended`) and where a refusal shows
(`_payment_failed`); a failed attempt gets a new request key, so trying again is a new payment."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

import reflex as rx

from app.components.card_form import confirm_payment_script
from app.errors import DomainError

NOT_AUTHENTICATED = "The card could not be authenticated."


class CardCharge(Protocol):
    """What the payment services answer: status succeeded | requires_action | processing | failed."""

    @property
    def status(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def message(self) -> str: ...


def new_request_key() -> str:
    """The idempotency key of one attempt at one payment: a repeated click or a replayed event
    with it charges once; the next attempt takes a new one."""
    return secrets.token_urlsafe(16)


class CardPaymentState(rx.State, mixin=True):
    _request_key: str = ""

    def _new_request(self) -> None:
        self._request_key = new_request_key()

    def _finish_payment(self, payment_intent: str, declined: str) -> CardCharge:
        """Ask the service how the payment ended after the browser's step (raise DomainError with
        `declined` when it is still not authenticated, to show that)."""
        raise NotImplementedError

    def _payment_ended(self, result: Any) -> Any:
        """Show a charge that needs nothing more from the browser; may return events."""
        raise NotImplementedError

    def _payment_failed(self, message: str) -> None:
        """Show why the payment did not go through, and end the pay button's busy state."""
        raise NotImplementedError

    def _finishes_without_intent(self) -> bool:
        """Whether `_finish_payment` can work out the payment without Stripe.js's intent id (the
        page asks again under the same request key) instead of ending the attempt here."""
        return False

    def _charged(self, result: CardCharge) -> Any:
        """After a charge: Stripe.js's 3-D Secure step, or the result shown."""
        if result.status == "requires_action":
            return rx.call_script(confirm_payment_script(result.client_secret), callback=type(self).payment_confirmed)
        return self._payment_ended(result)

    @rx.event
    def payment_confirmed(self, outcome: dict):
        """After Stripe.js finished 3-D Secure: the server asks Stripe how it ended."""
        payment_intent = str(outcome.get("payment_intent") or "")
        declined = str(outcome.get("error") or NOT_AUTHENTICATED)
        if not outcome.get("ok") and not payment_intent and not self._finishes_without_intent():
            self._payment_failed(declined)
            self._new_request()
            return None
        try:
            result = self._finish_payment(payment_intent, declined)
        except DomainError as exc:
            self._payment_failed(exc.message)
            return None
        return self._payment_ended(result)
