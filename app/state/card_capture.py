"""Saving a card or a SEPA bank account, mixed into each page state that lets the user add one:
a SetupIntent from the service, Stripe.js confirms it in the browser (the card number and the
IBAN go to Stripe), the service saves the method. One capture is open at a time (`capture`:
"card", "sepa" or ""); its errors are the form's (`errors["card"]`, the SEPA fields by name,
`errors["sepa"]`), drawn by `app.components.card_form`."""

from __future__ import annotations

import reflex as rx

from app.components.card_form import confirm_sepa_setup_script, confirm_setup_script, mount_card_script
from app.errors import DomainError
from app.services import payment_methods
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.session import acting

CARD, SEPA = "card", "sepa"


class CardCaptureState(FormState, mixin=True):
    """The page state provides `_method_saved(label, method_id)`."""

    capture: rx.Field[str] = rx.field("")
    _setup_secret: str = ""
    _sepa_holder_name: str = ""

    def _method_saved(self, label: str, method_id: str) -> None:
        raise NotImplementedError

    def _open_capture(self, kind: str) -> None:
        self.errors, self.error, self.busy = {}, "", ""
        self.capture = kind

    @rx.event
    def open_card_form(self):
        self.errors, self.error = {}, ""
        try:
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                secret = payment_methods.start_card_setup(session, actor)
        except DomainError as exc:
            self.error = exc.message
            return None
        self._setup_secret = secret
        self._open_capture(CARD)
        return rx.call_script(mount_card_script())

    @rx.event
    def open_sepa_form(self):
        self.notice = ""
        self._open_capture(SEPA)

    @rx.event
    def close_capture(self):
        self._open_capture("")

    @rx.event
    def save_card(self, form_data: dict):
        self.errors = {}
        holder = str(form_data.get("holder_name", "")).strip()
        if not holder:
            self.errors = {CARD: "Enter the name on the card."}
            return None
        self.busy = CARD
        return rx.call_script(confirm_setup_script(self._setup_secret, holder), callback=type(self).card_confirmed)

    @rx.event
    def save_bank_account(self, form_data: dict):
        self._clear_messages()
        try:
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                secret, account = payment_methods.start_bank_account_setup(
                    session,
                    actor,
                    holder_name=str(form_data.get("sepa_holder_name", "")),
                    email=str(form_data.get("sepa_email", "")),
                    iban=str(form_data.get("iban", "")),
                    mandate_accepted=form_data.get("mandate") is True,
                )
        except DomainError as exc:
            self._show_error(exc, field=SEPA)
            return None
        self.busy, self._sepa_holder_name = SEPA, account.holder_name
        return rx.call_script(
            confirm_sepa_setup_script(secret, holder_name=account.holder_name, email=account.email, iban=account.iban),
            callback=type(self).bank_account_confirmed,
        )

    @rx.event
    def card_confirmed(self, outcome: dict):
        self._confirmed(outcome, CARD, "The card could not be saved.")

    @rx.event
    def bank_account_confirmed(self, outcome: dict):
        self._confirmed(outcome, SEPA, "The bank account could not be saved.")

    def _confirmed(self, outcome: dict, kind: str, refused: str) -> None:
        """Stripe.js answered: save the method it confirmed, or show why not at the form."""
        self.busy = ""
        if not outcome.get("ok"):
            self.errors = {kind: str(outcome.get("error") or refused)}
            return
        stripe_id = str(outcome.get("payment_method", ""))
        try:
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                if kind == SEPA:
                    saved = payment_methods.save_bank_account(session, actor, stripe_id, self._sepa_holder_name)
                else:
                    saved = payment_methods.save_card(session, actor, stripe_id)
                label, method_id = payment_methods.label(saved), saved.stripe_payment_method_id
            self._method_saved(label, method_id)
        except DomainError as exc:
            self.errors = {kind: exc.message}
            return
        self.capture = ""
