"""Payment Methods (seeds 001, 003): the saved cards and SEPA Direct Debit bank accounts, the
default method, adding a card through the embedded Card Element or a bank account with its IBAN
and the SEPA mandate, and deleting a method after confirmation."""

from __future__ import annotations

import reflex as rx

from app.components.card_form import capture_form
from app.components.dialogs import confirm_dialog
from app.components.forms import form_messages
from app.components.layout import console_page
from app.components.tables import data_table, delete_icon_button, rows_or_empty
from app.services import payment_methods
from app.services.payment_methods import MethodView
from app.services.permissions import Permission
from app.state.card_capture import CardCaptureState
from app.state.confirm import ConfirmState
from app.state.events import event
from app.state.live import LiveState
from app.state.session import acting


class PaymentMethodsState(CardCaptureState, ConfirmState, LiveState, rx.State):
    cards: rx.Field[list[MethodView]] = rx.field(default_factory=list)
    can_manage: rx.Field[bool] = rx.field(False)
    invoice_priced: rx.Field[bool] = rx.field(False)
    # The delete dialog (its card is `confirm_target`): why it cannot be deleted, or which card
    # becomes the default when it is the default.
    delete_is_default: rx.Field[bool] = rx.field(False)
    delete_blocker: rx.Field[str] = rx.field("")
    new_default: rx.Field[str] = rx.field("")

    @rx.var
    def other_cards(self) -> list[MethodView]:
        return [card for card in self.cards if card.id != self.confirm_target]

    def _reload(self) -> None:
        with acting(self, Permission.BILLING_VIEW) as (actor, session):
            on_file = payment_methods.methods_on_file(session, actor)
            self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.cards, self.invoice_priced = on_file.methods, on_file.invoice_priced
        self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        self._reload()

    @rx.event
    def load(self):
        self.capture = ""
        self._close_confirm()
        with self._attempt():
            self._reload()

    @event
    def set_default(self, card_id: str):
        with self._attempt(card_id):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                label = payment_methods.label(payment_methods.set_default(session, actor, card_id))
            self._reload()
            self.notice = f"{label} is now your default card."

    def _method_saved(self, label: str, method_id: str) -> None:
        self._reload()
        self.notice = f"{label} saved."

    @event
    def ask_delete(self, card_id: str):
        self._close_confirm()
        card = next((c for c in self.cards if c.id == card_id), None)
        if card is None:
            return
        with self._attempt():
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                blocker = payment_methods.deletion_blocker(session, actor, card_id)
            self.delete_blocker, self.delete_is_default = blocker, card.is_default
            lines = (
                [f"{card.label} cannot be deleted yet."]
                if blocker
                else [f"Delete {card.label}? It can no longer be charged and is removed from Stripe."]
            )
            self._ask("delete", target=card.id, title="Delete card", lines=lines, button="Delete card")
            others = [c for c in self.cards if c.id != card.id]
            # Suggest a card that can still be charged.
            self.new_default = next((c.id for c in others if not c.expired), others[0].id if others else "")

    @rx.event
    def set_new_default(self, card_id: str):
        self.new_default = card_id

    @rx.event
    def confirm(self):
        label = next((c.label for c in self.cards if c.id == self.confirm_target), "")
        with self._confirming():
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                new_default = self.new_default if self.delete_is_default else ""
                payment_methods.delete_method(session, actor, self.confirm_target, new_default)
            self._reload()
            self.notice = f"{label} deleted."


def _status(card: MethodView) -> rx.Component:
    return rx.cond(
        card.is_default,
        rx.badge("Default Card", color_scheme="green", variant="soft", size="2"),
        rx.cond(
            PaymentMethodsState.can_manage & ~PaymentMethodsState.invoice_priced,
            rx.button(
                "Set as Default",
                size="1",
                variant="soft",
                loading=PaymentMethodsState.busy == card.id,
                disabled=PaymentMethodsState.busy != "",
                on_click=PaymentMethodsState.set_default(card.id),
            ),
        ),
    )


def _row(card: MethodView) -> rx.Component:
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
                delete_icon_button(
                    rx.cond(card.bank_account, "Delete bank account ", "Delete card ") + card.spoken_label,
                    PaymentMethodsState.ask_delete(card.id),
                ),
            ),
            text_align="right",
        ),
        data_card=card.id,
    )


def _cards_table() -> rx.Component:
    return data_table(
        "payment-methods-table",
        ["Payment method", "Name on card", "Expiring date", "Status"],
        PaymentMethodsState.cards,
        _row,
    )


def _new_default_choice(card: MethodView) -> rx.Component:
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
    return confirm_dialog(
        state,
        blocker=state.delete_blocker,
        blocker_id="delete-blocker",
        body=rx.cond(
            (state.delete_blocker == "") & state.delete_is_default & (state.other_cards.length() > 0),
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
        max_width="480px",
    )


def _add_method_buttons() -> rx.Component:
    return rx.cond(
        PaymentMethodsState.can_manage & ~PaymentMethodsState.invoice_priced & (PaymentMethodsState.capture == ""),
        rx.hstack(
            rx.button(
                rx.icon("plus", size=16),
                "Add New Credit Card",
                on_click=PaymentMethodsState.open_card_form,
                id="add-card",
            ),
            rx.button(
                rx.icon("landmark", size=16),
                "Add bank account (SEPA)",
                variant="soft",
                on_click=PaymentMethodsState.open_sepa_form,
                id="add-bank-account",
            ),
            spacing="2",
            wrap="wrap",
        ),
    )


@console_page(
    "/billing/payment-methods",
    "Cards and bank accounts are stored by Stripe; the default one pays your plan and top-ups.",
    on_load=[PaymentMethodsState.load],
    action=_add_method_buttons,
)
def payment_methods_page() -> list[rx.Component]:
    state = PaymentMethodsState
    return [
        rx.cond(
            state.invoice_priced,
            rx.callout(payment_methods.INVOICE_PRICED_MESSAGE, icon="receipt", id="invoice-priced"),
        ),
        form_messages(state),
        capture_form(state),
        rows_or_empty(
            state.cards,
            _cards_table(),
            rx.cond(
                state.can_manage & ~state.invoice_priced,
                "No cards on file yet. Add a card to pay for your plan, top-ups and auto recharge.",
                "No cards on file.",
            ),
            empty_id="payment-methods-empty",
            icon="credit-card",
        ),
        _delete_dialog(),
    ]
