"""Invoices (seed 003): Payments Due (pay with a saved card, download the PDF) and the order and
invoice history."""

from __future__ import annotations

import secrets
from dataclasses import asdict

import reflex as rx

from app.components.card_form import confirm_payment_script
from app.components.dialogs import dialog_actions
from app.components.forms import field, form_error, form_notice
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError
from app.services import invoices, payment_methods
from app.services.permissions import Actor, Permission
from app.state.session import current_actor


def pdf_url(invoice_id: rx.Var) -> rx.Var:
    return "/api/invoices/" + invoice_id + "/pdf"


class InvoicesState(rx.State):
    due: list[dict[str, str]] = []
    history: list[dict[str, str]] = []
    cards: list[dict[str, str]] = []
    can_manage: bool = False
    error: str = ""
    notice: str = ""
    # The invoice the pay dialog is about ("" = closed).
    pay_id: str = ""
    pay_number: str = ""
    pay_amount: str = ""
    selected_card: str = ""
    pay_error: str = ""
    paying: bool = False
    _request_key: str = ""

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            due = invoices.payments_due(session, actor)
            history = invoices.history(session, actor)
            cards = payment_methods.saved_methods(session, actor) if actor.can(Permission.BILLING_MANAGE) else []
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.due = [_row(row) for row in due]
        self.history = [_row(row) for row in history]
        self.cards = [{"value": m.stripe_payment_method_id, "label": payment_methods.describe(m)} for m in cards]

    def _close_pay(self) -> None:
        self.pay_id = self.pay_number = self.pay_amount = self.selected_card = self.pay_error = ""
        self.paying = False

    @rx.event
    def load(self):
        self.error = self.notice = ""
        self._close_pay()
        try:
            self._reload(current_actor(self, Permission.BILLING_VIEW))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def open_pay(self, invoice_id: str):
        self.error = self.notice = ""
        self._close_pay()
        row = next((r for r in self.due if r["id"] == invoice_id), None)
        if row is None:
            return
        try:
            self._reload(current_actor(self, Permission.BILLING_MANAGE))
        except DomainError as exc:
            self.error = exc.message
            return
        self.pay_id, self.pay_number, self.pay_amount = row["id"], row["number"], row["amount"]
        self.selected_card = self.cards[0]["value"] if self.cards else ""
        self._request_key = secrets.token_urlsafe(16)

    @rx.event
    def set_selected_card(self, value: str):
        self.selected_card = value

    @rx.event
    def dialog_open_change(self, is_open: bool):
        if not is_open and not self.paying:
            self._close_pay()

    @rx.event
    def confirm_pay(self):
        self.pay_error = ""
        if not self.selected_card:
            self.pay_error = "Select one of your saved cards."
            return
        self.paying = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                result = invoices.pay_invoice(
                    session,
                    actor,
                    invoice_id=self.pay_id,
                    payment_method_id=self.selected_card,
                    request_key=self._request_key,
                )
        except DomainError as exc:
            self.paying = False
            self.pay_error = exc.message
            return
        if result.status == "requires_action":
            yield rx.call_script(confirm_payment_script(result.client_secret), callback=InvoicesState.payment_confirmed)
            return
        self._show_result(result)

    @rx.event
    def payment_confirmed(self, outcome: dict):
        """After Stripe.js finished 3-D Secure: the server asks Stripe how it ended."""
        payment_intent = str(outcome.get("payment_intent") or "")
        if not outcome.get("ok") and not payment_intent:
            self.paying = False
            self.pay_error = str(outcome.get("error") or "The card could not be authenticated.")
            self._request_key = secrets.token_urlsafe(16)
            return
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                result = invoices.finish_invoice_payment(session, actor, payment_intent)
        except DomainError as exc:
            self.paying = False
            self.pay_error = exc.message
            return
        self._show_result(result)

    def _show_result(self, result: invoices.PayResult) -> None:
        number = self.pay_number
        if result.status in ("succeeded", "processing"):
            self._close_pay()
            self.notice = (
                f"Invoice {number} is paid. Thank you."
                if result.status == "succeeded"
                else f"Your payment of invoice {number} is processing."
            )
            try:
                self._reload(current_actor(self, Permission.BILLING_VIEW))
            except DomainError as exc:
                self.error = exc.message
            return
        self.paying = False
        self.pay_error = result.message or "The payment failed. Nothing was charged."
        # A new attempt (another card, say) is a new request.
        self._request_key = secrets.token_urlsafe(16)


def _row(row: invoices.InvoiceRow) -> dict[str, str]:
    values = {k: str(v) for k, v in asdict(row).items()}
    values["overdue"] = "true" if row.overdue else ""
    return values


def _download(row: rx.Var) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon("download", size=14), "Download PDF", align="center", spacing="1"),
        href=pdf_url(row["id"]),
        # A file from the API, not a page: the browser fetches it instead of the client router.
        reload_document=True,
        size="2",
        aria_label="Download PDF of invoice " + row["number"],
    )


def _due_row(row: rx.Var) -> rx.Component:
    state = InvoicesState
    return rx.table.row(
        rx.table.cell(row["invoice_date"]),
        rx.table.cell(
            rx.text(row["number"], weight="medium"),
            rx.text(row["description"], size="1", color_scheme="gray"),
        ),
        rx.table.cell(
            rx.hstack(
                rx.text(row["due_date"]),
                rx.cond(row["overdue"] != "", rx.badge("Overdue", color_scheme="red", variant="soft")),
                spacing="2",
                align="center",
            )
        ),
        rx.table.cell(row["amount"], text_align="right"),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    state.can_manage & (state.cards.length() > 0),
                    rx.button(
                        "Pay",
                        size="1",
                        on_click=state.open_pay(row["id"]),
                        aria_label="Pay invoice " + row["number"],
                    ),
                ),
                _download(row),
                spacing="3",
                align="center",
            )
        ),
        data_invoice=row["number"],
    )


def _history_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["invoice_date"]),
        rx.table.cell(
            rx.text(row["number"], weight="medium"),
            rx.text(
                rx.cond(row["status"] == "void", "Void", row["description"]),
                size="1",
                color_scheme="gray",
            ),
        ),
        rx.table.cell(row["payment_date"]),
        rx.table.cell(row["amount"], text_align="right"),
        rx.table.cell(_download(row)),
        data_invoice=row["number"],
    )


def _pay_dialog() -> rx.Component:
    state = InvoicesState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Pay invoice ", state.pay_number),
            rx.alert_dialog.description("Charge ", state.pay_amount, " to one of your saved cards, once."),
            rx.vstack(
                field(
                    "Card",
                    rx.select.root(
                        rx.select.trigger(placeholder="Select a card", id="pay_card", width="100%"),
                        rx.select.content(
                            rx.foreach(state.cards, lambda card: rx.select.item(card["label"], value=card["value"]))
                        ),
                        value=state.selected_card,
                        on_change=state.set_selected_card,
                    ),
                    field_id="pay_card",
                    error=state.pay_error,
                ),
                dialog_actions(
                    rx.button(
                        "Pay ", state.pay_amount, loading=state.paying, on_click=state.confirm_pay, id="confirm-pay"
                    ),
                    state.paying,
                ),
                spacing="4",
                margin_top="1em",
            ),
            max_width="480px",
        ),
        open=state.pay_id != "",
        on_open_change=state.dialog_open_change,
    )


@console_page(
    route="/billing/invoices",
    title="Invoices",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Invoices",
    order=110,
    on_load=[InvoicesState.load],
)
def invoices_page() -> rx.Component:
    state = InvoicesState
    return rx.vstack(
        page_heading("Invoices", "What is due, and every order and invoice so far."),
        form_notice(state.notice),
        form_error(state.error),
        rx.heading("Payments Due", size="4", as_="h2"),
        rx.cond(
            state.due.length() > 0,
            data_table(
                "payments-due",
                ["Invoice Date", "Invoice ID", "Due Date", "Amount"],
                state.due,
                _due_row,
                right_aligned=("Amount",),
            ),
            rx.callout("Nothing is due. Thank you!", icon="circle-check", id="payments-due-empty"),
        ),
        rx.heading("Order and invoice history", size="4", as_="h2", margin_top="1em"),
        rx.cond(
            state.history.length() > 0,
            data_table(
                "invoice-history",
                ["Invoice Date", "Invoice ID", "Payment date", "Amount"],
                state.history,
                _history_row,
                right_aligned=("Amount",),
            ),
            rx.callout(
                "No invoices yet. Credit purchases, recharges and monthly invoices appear here.",
                icon="receipt",
                id="invoice-history-empty",
            ),
        ),
        _pay_dialog(),
        spacing="4",
        align="stretch",
    )
