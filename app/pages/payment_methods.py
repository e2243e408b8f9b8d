"""Payment Methods (seeds 001, 003): the saved cards and SEPA Direct Debit bank accounts, the
default method, adding a card through the embedded Card Element or a bank account with its IBAN
and the SEPA mandate, and deleting a method after confirmation."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.card_form import card_form, confirm_sepa_setup_script
from app.components.dialogs import dialog_actions
from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError
from app.models import Account, utcnow
from app.services import payment_methods
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission
from app.services.timefmt import zone
from app.state.card_capture import CardCaptureState
from app.state.session import current_actor


@dataclass
class CardRow:
    id: str = ""
    label: str = ""
    spoken_label: str = ""
    holder_name: str = ""
    expiry: str = ""
    expired: bool = False
    is_default: bool = False
    bank_account: bool = False


class PaymentMethodsState(CardCaptureState, rx.State):
    cards: list[CardRow] = []
    can_manage: bool = False
    invoice_priced: bool = False
    error: str = ""
    notice: str = ""
    busy_id: str = ""
    # The card the delete dialog is about ("" = dialog closed).
    delete_id: str = ""
    delete_label: str = ""
    delete_is_default: bool = False
    delete_blocker: str = ""
    new_default: str = ""
    delete_error: str = ""
    deleting: bool = False
    # The SEPA Direct Debit form.
    show_sepa_form: bool = False
    sepa_holder_name_error: str = ""
    sepa_email_error: str = ""
    iban_error: str = ""
    mandate_error: str = ""
    sepa_error: str = ""
    saving_sepa: bool = False
    _sepa_holder_name: str = ""

    @rx.var
    def other_cards(self) -> list[CardRow]:
        return [card for card in self.cards if card.id != self.delete_id]

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            rows = payment_methods.saved_methods(session, actor)
            self.invoice_priced = billing_settings(session, actor.account_id).invoice_priced
            timezone = session.get(Account, actor.account_id).timezone
        today = utcnow().astimezone(zone(timezone)).date()
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.cards = [
            CardRow(
                id=row.stripe_payment_method_id,
                label=payment_methods.label(row),
                spoken_label=payment_methods.spoken_label(row),
                holder_name=row.holder_name or "—",
                expiry=payment_methods.expiry(row),
                expired=payment_methods.is_expired(row, today),
                is_default=row.is_default,
                bank_account=row.kind == "sepa_debit",
            )
            for row in rows
        ]

    def _close_delete(self) -> None:
        self.delete_id = self.delete_label = self.delete_blocker = self.new_default = self.delete_error = ""
        self.delete_is_default = self.deleting = False

    @rx.event
    def load(self):
        self.error = self.notice = self.card_error = self.busy_id = ""
        self.show_card_form = self.saving_card = False
        self._close_delete()
        try:
            self._reload(current_actor(self, Permission.BILLING_VIEW))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_default(self, card_id: str):
        self.error = self.notice = ""
        self.busy_id = card_id
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                label = payment_methods.label(payment_methods.set_default(session, actor, card_id))
            self._reload(actor)
            self.notice = f"{label} is now your default card."
        except DomainError as exc:
            self.error = exc.message
        self.busy_id = ""

    def _clear_sepa_errors(self) -> None:
        self.sepa_holder_name_error = self.sepa_email_error = self.iban_error = self.mandate_error = ""
        self.sepa_error = self.error = self.notice = ""

    @rx.event
    def open_sepa_form(self):
        self._clear_sepa_errors()
        self.show_sepa_form = True

    @rx.event
    def close_sepa_form(self):
        self._clear_sepa_errors()
        self.show_sepa_form = self.saving_sepa = False

    @rx.event
    def save_bank_account(self, form_data: dict):
        self._clear_sepa_errors()
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                secret, account = payment_methods.start_bank_account_setup(
                    session,
                    actor,
                    holder_name=str(form_data.get("sepa_holder_name", "")),
                    email=str(form_data.get("sepa_email", "")),
                    iban=str(form_data.get("iban", "")),
                    mandate_accepted=form_data.get("mandate") is True,
                )
        except DomainError as exc:
            if exc.field in ("sepa_holder_name", "sepa_email", "iban", "mandate"):
                setattr(self, f"{exc.field}_error", exc.message)
            else:
                self.sepa_error = exc.message
            return
        self.saving_sepa, self._sepa_holder_name = True, account.holder_name
        return rx.call_script(
            confirm_sepa_setup_script(secret, holder_name=account.holder_name, email=account.email, iban=account.iban),
            callback=type(self).bank_account_confirmed,
        )

    @rx.event
    def bank_account_confirmed(self, outcome: dict):
        self.saving_sepa = False
        if not outcome.get("ok"):
            self.sepa_error = str(outcome.get("error") or "The bank account could not be saved.")
            return
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                saved = payment_methods.save_bank_account(
                    session, actor, str(outcome.get("payment_method", "")), self._sepa_holder_name
                )
            self._card_saved(actor, saved)
        except DomainError as exc:
            self.sepa_error = exc.message
            return
        self.show_sepa_form = False

    def _card_saved(self, actor: Actor, method) -> None:
        label = payment_methods.label(method)
        self._reload(actor)
        self.notice = f"{label} saved."

    @rx.event
    def ask_delete(self, card_id: str):
        self.error = self.notice = ""
        self._close_delete()
        card = next((c for c in self.cards if c.id == card_id), None)
        if card is None:
            return
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                self.delete_blocker = payment_methods.deletion_blocker(session, actor, card_id)
        except DomainError as exc:
            self.error = exc.message
            return
        self.delete_id, self.delete_label, self.delete_is_default = card.id, card.label, card.is_default
        others = [c for c in self.cards if c.id != card.id]
        # Suggest a card that can still be charged.
        self.new_default = next((c.id for c in others if not c.expired), others[0].id if others else "")

    @rx.event
    def set_new_default(self, card_id: str):
        self.new_default = card_id

    @rx.event
    def dialog_open_change(self, is_open: bool):
        if not is_open and not self.deleting:
            self._close_delete()

    @rx.event
    def confirm_delete(self):
        self.delete_error = ""
        self.deleting = True
        yield
        label = self.delete_label
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                payment_methods.delete_method(
                    session, actor, self.delete_id, self.new_default if self.delete_is_default else ""
                )
            self._reload(actor)
        except DomainError as exc:
            self.deleting = False
            self.delete_error = exc.message
            return
        self._close_delete()
        self.notice = f"{label} deleted."


def _status(card: CardRow) -> rx.Component:
    return rx.cond(
        card.is_default,
        rx.badge("Default Card", color_scheme="green", variant="soft", size="2"),
        rx.cond(
            PaymentMethodsState.can_manage & ~PaymentMethodsState.invoice_priced,
            rx.button(
                "Set as Default",
                size="1",
                variant="soft",
                loading=PaymentMethodsState.busy_id == card.id,
                disabled=PaymentMethodsState.busy_id != "",
                on_click=PaymentMethodsState.set_default(card.id),
            ),
        ),
    )


def _row(card: CardRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(
                rx.cond(card.bank_account, rx.icon("landmark", size=16), rx.icon("credit-card", size=16)),
                rx.text(card.label),
                align="center",
                spacing="2",
            )
        ),
        rx.table.cell(card.holder_name),
        rx.table.cell(
            rx.hstack(
                rx.text(card.expiry),
                rx.cond(card.expired, rx.badge("Expired", color_scheme="red", variant="solid")),
                align="center",
                spacing="2",
            )
        ),
        rx.table.cell(_status(card)),
        rx.table.cell(
            rx.cond(
                PaymentMethodsState.can_manage,
                rx.icon_button(
                    rx.icon("trash-2", size=16),
                    variant="ghost",
                    color_scheme="red",
                    aria_label=rx.cond(card.bank_account, "Delete bank account ", "Delete card ") + card.spoken_label,
                    on_click=PaymentMethodsState.ask_delete(card.id),
                ),
            ),
            text_align="right",
        ),
        data_card=card.id,
    )


def _cards_table() -> rx.Component:
    return data_table(
        "payment-methods-table",
        ["Payment method", "Holder", "Expires / bank code", "Status"],
        PaymentMethodsState.cards,
        _row,
    )


def _sepa_form() -> rx.Component:
    state = PaymentMethodsState
    return rx.form(
        rx.vstack(
            rx.heading("New bank account (SEPA Direct Debit)", size="3", as_="h3"),
            text_field(
                "Account holder name",
                field_id="sepa_holder_name",
                error=state.sepa_holder_name_error,
                auto_complete="name",
                max_length=200,
            ),
            text_field(
                "Email", field_id="sepa_email", type="email", error=state.sepa_email_error, auto_complete="email"
            ),
            text_field(
                "IBAN",
                field_id="iban",
                error=state.iban_error,
                placeholder="DE89 3704 0044 0532 0130 00",
                max_length=42,
                auto_complete="off",
            ),
            rx.text(payment_methods.SEPA_MANDATE, size="1", color_scheme="gray", id="sepa-mandate"),
            rx.el.label(
                rx.hstack(
                    rx.checkbox(name="mandate", id="mandate"),
                    rx.text("I accept the SEPA Direct Debit mandate above.", size="2"),
                    align="center",
                    spacing="2",
                ),
            ),
            rx.cond(
                state.mandate_error != "",
                rx.text(state.mandate_error, color_scheme="red", size="2", role="alert", id="mandate-error"),
            ),
            rx.cond(
                state.sepa_error != "",
                rx.text(state.sepa_error, color_scheme="red", size="2", role="alert", id="sepa-error"),
            ),
            rx.hstack(
                rx.button("Save bank account", type="submit", loading=state.saving_sepa, id="save-bank-account"),
                rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=state.close_sepa_form),
                spacing="2",
            ),
            rx.text(
                "SEPA payments take a few days: top-ups and invoices paid this way show as processing until "
                "the bank confirms them.",
                size="1",
                color_scheme="gray",
            ),
            spacing="3",
            align="stretch",
        ),
        on_submit=state.save_bank_account,
        reset_on_submit=False,
        class_name="ld-card-form",
    )


def _new_default_choice(card: CardRow) -> rx.Component:
    return rx.el.label(
        rx.hstack(
            rx.radio_group.item(value=card.id),
            rx.text(card.label, size="2"),
            rx.cond(card.expired, rx.badge("Expired", color_scheme="red", variant="solid")),
            align="center",
            spacing="2",
        ),
    )


def _delete_dialog() -> rx.Component:
    state = PaymentMethodsState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete card"),
            rx.cond(
                state.delete_blocker != "",
                rx.vstack(
                    rx.alert_dialog.description(state.delete_label, " cannot be deleted yet."),
                    rx.callout(state.delete_blocker, icon="triangle_alert", color_scheme="orange", id="delete-blocker"),
                    rx.flex(
                        rx.alert_dialog.cancel(rx.button("Close", variant="soft", color_scheme="gray")),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
                rx.vstack(
                    rx.alert_dialog.description(
                        "Delete ", state.delete_label, "? It can no longer be charged and is removed from Stripe."
                    ),
                    rx.cond(
                        state.delete_is_default & (state.other_cards.length() > 0),
                        rx.vstack(
                            rx.text(
                                "This is your default card. Which card becomes the default?",
                                size="2",
                                weight="medium",
                                id="new-default-label",
                            ),
                            rx.radio_group.root(
                                rx.vstack(rx.foreach(state.other_cards, _new_default_choice), spacing="2"),
                                value=state.new_default,
                                on_change=state.set_new_default,
                                aria_labelledby="new-default-label",
                            ),
                            spacing="2",
                        ),
                    ),
                    rx.cond(
                        state.delete_error != "",
                        rx.text(state.delete_error, color_scheme="red", size="2", role="alert", id="delete-error"),
                    ),
                    dialog_actions(
                        rx.button(
                            "Delete card", color_scheme="red", loading=state.deleting, on_click=state.confirm_delete
                        ),
                        state.deleting,
                    ),
                    spacing="3",
                ),
            ),
            max_width="480px",
        ),
        open=state.delete_id != "",
        on_open_change=state.dialog_open_change,
    )


@console_page(
    route="/billing/payment-methods",
    title="Payment Methods",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Payment Methods",
    order=120,
    on_load=[PaymentMethodsState.load],
)
def payment_methods_page() -> rx.Component:
    state = PaymentMethodsState
    return rx.vstack(
        rx.hstack(
            page_heading(
                "Payment Methods",
                "Cards and bank accounts are stored by Stripe; the default one pays your plan and top-ups.",
            ),
            rx.spacer(),
            rx.cond(
                state.can_manage & ~state.invoice_priced & ~state.show_card_form & ~state.show_sepa_form,
                rx.hstack(
                    rx.button(
                        rx.icon("plus", size=16), "Add New Credit Card", on_click=state.open_card_form, id="add-card"
                    ),
                    rx.button(
                        rx.icon("landmark", size=16),
                        "Add bank account (SEPA)",
                        variant="soft",
                        on_click=state.open_sepa_form,
                        id="add-bank-account",
                    ),
                    spacing="2",
                ),
            ),
            align="start",
            width="100%",
        ),
        rx.cond(
            state.invoice_priced,
            rx.callout(payment_methods.INVOICE_PRICED_MESSAGE, icon="receipt", id="invoice-priced"),
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(
            state.show_card_form,
            rx.box(
                card_form(
                    on_submit=state.save_card,
                    on_cancel=state.close_card_form,
                    error=state.card_error,
                    saving=state.saving_card,
                ),
                max_width="560px",
                width="100%",
            ),
        ),
        rx.cond(state.show_sepa_form, rx.box(_sepa_form(), max_width="560px", width="100%")),
        rx.cond(
            state.cards.length() > 0,
            _cards_table(),
            rx.callout(
                rx.cond(
                    state.can_manage & ~state.invoice_priced,
                    "No cards on file yet. Add a card to pay for your plan, top-ups and auto recharge.",
                    "No cards on file.",
                ),
                icon="credit-card",
                id="payment-methods-empty",
            ),
        ),
        _delete_dialog(),
        spacing="4",
        align="stretch",
    )
