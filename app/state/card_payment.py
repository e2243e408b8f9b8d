"""One card payment in the page, mixed into the states that charge a saved card (Add Usage
Credits, Invoices, Plans, Products): the request key that makes one click one payment, the 3-D
Secure step in the browser, and the server's word on how it ended.

    @event
    def submit(self, form_data: dict):
        key = self._charge_key_for(str(form_data.get(REQUEST_KEY, "")), amount_text, method_id)
        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            result = topups.start_card_topup(..., request_key=key)
        return self._charged(result)

The request key belongs to what the user submitted, not to the handler that runs:

- The state issues a key when the form or the confirmation is shown (`_new_request`), and the
  page renders it with the control that charges: a hidden input in the form
  (`app.components.forms.request_key_input`), or the confirm button's argument.
- Each submit carries the key the page showed when the user clicked. A double-click or a second
  Enter is queued in the browser before the first answer arrives, so it carries the same key:
  the server finds the first payment and shows its result again; nothing more is charged.
- `_charge_key_for` binds that key to what was submitted (amount, card, invoice, plan): a
  changed amount or method under the same form is a different payment.
- Once a result is shown (succeeded, processing, failed, or the 3-D Secure step refused) the
  state issues a new key, which the page renders: the user's next click is a new attempt and a
  new payment. While 3-D Secure is pending the attempt keeps its key, which the finish uses.
- The button that charges shows busy, and is disabled, from the click until the result is shown.

`_charged` hands a payment that needs authentication to Stripe.js (`confirm_payment_script`),
whose outcome comes back to `payment_confirmed`; that asks the page's `_finish_payment` how it
ended. The page says what an ended payment means (`_payment_ended`) and where a refusal shows
(`_payment_failed`; in the confirmation dialog with `ConfirmedCardPaymentState`)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Protocol

import reflex as rx

from app.components.card_form import confirm_payment_script
from app.errors import DomainError, ValidationFailed
from app.state.confirm import ConfirmState

NOT_AUTHENTICATED = "The card could not be authenticated."
# The form field (or confirm argument) that carries the key the page showed.
REQUEST_KEY = "request_key"
EXPIRED_MESSAGE = "This page is out of date. Reload it and try again."


class CardCharge(Protocol):
    """What the payment services answer: status succeeded | requires_action | processing | failed."""

    @property
    def status(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def message(self) -> str: ...


def new_request_key() -> str:
    """The key of one attempt at one payment, shown with the form: a repeated click with it
    charges once; the next attempt takes a new one."""
    return secrets.token_urlsafe(16)


class CardPaymentState(rx.State, mixin=True):
    # The key the page shows with the control that charges (see the module's docstring).
    request_key: rx.Field[str] = rx.field("")
    # The key of the attempt under way, which the 3-D Secure finish asks about.
    _charge_key: str = ""

    def _new_request(self) -> None:
        self.request_key = new_request_key()

    def _charge_key_for(self, submitted: str, *what: str) -> str:
        """The request key of this click: the key the page showed, bound to what was submitted."""
        if not submitted:
            raise ValidationFailed(EXPIRED_MESSAGE)
        self._charge_key = hashlib.sha256("\x1f".join((submitted, *what)).encode()).hexdigest()[:32]
        return self._charge_key

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
        """After a charge: Stripe.js's 3-D Secure step, or the result shown (and a new key)."""
        if result.status == "requires_action":
            return rx.call_script(confirm_payment_script(result.client_secret), callback=type(self).payment_confirmed)
        return self._shown(result)

    def _shown(self, result: CardCharge) -> Any:
        events = self._payment_ended(result)
        self._new_request()
        return events

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
            self._new_request()
            return None
        return self._shown(result)


class ConfirmedCardPaymentState(CardPaymentState, ConfirmState, mixin=True):
    """A card payment the page's confirmation dialog asks for (Invoices, Plans, Products): the
    dialog steps aside for the 3-D Secure step, and a refused payment shows in it with why."""

    def _charged(self, result: CardCharge) -> Any:
        if result.status == "requires_action":
            self.confirm_hidden = True
        return super()._charged(result)

    def _payment_failed(self, message: str) -> None:
        self.confirm_error, self.confirming, self.confirm_hidden = message, False, False
