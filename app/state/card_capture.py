"""The embedded card form's flow, mixed into each page state that lets the user add a card:
a SetupIntent from the service, Stripe.js confirms it in the browser, the service saves the card."""

from __future__ import annotations

import reflex as rx

from app.components.card_form import confirm_setup_script, mount_card_script
from app.db import transaction
from app.errors import DomainError
from app.models import PaymentMethod
from app.services import payment_methods
from app.services.permissions import Actor, Permission
from app.state.session import current_actor


class CardCaptureState(rx.State, mixin=True):
    """The page state provides `error: str` and `_card_saved(actor, method)`."""

    show_card_form: bool = False
    card_error: str = ""
    saving_card: bool = False
    _setup_secret: str = ""

    def _card_saved(self, actor: Actor, method: PaymentMethod) -> None:
        raise NotImplementedError

    @rx.event
    def open_card_form(self):
        self.card_error = self.error = ""
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                self._setup_secret = payment_methods.start_card_setup(session, actor)
        except DomainError as exc:
            self.error = exc.message
            return
        self.show_card_form = True
        return rx.call_script(mount_card_script())

    @rx.event
    def close_card_form(self):
        self.show_card_form = False
        self.card_error = ""

    @rx.event
    def save_card(self, form_data: dict):
        self.card_error = ""
        holder = str(form_data.get("holder_name", "")).strip()
        if not holder:
            self.card_error = "Enter the name on the card."
            return
        self.saving_card = True
        return rx.call_script(confirm_setup_script(self._setup_secret, holder), callback=type(self).card_confirmed)

    @rx.event
    def card_confirmed(self, outcome: dict):
        self.saving_card = False
        if not outcome.get("ok"):
            self.card_error = str(outcome.get("error") or "The card could not be saved.")
            return
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                saved = payment_methods.save_card(session, actor, str(outcome.get("payment_method", "")))
            self._card_saved(actor, saved)
        except DomainError as exc:
            self.card_error = exc.message
            return
        self.show_card_form = False
