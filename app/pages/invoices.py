"""Invoices (seed 003): Payments Due (pay with a saved card or from the credit balance, download
the PDF) and the order and invoice history."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import confirm_dialog
from app.components.forms import field, form_messages
from app.components.layout import console_page, section_heading
from app.components.panels import payment_method_select
from app.components.tables import data_table, rows_or_empty
from app.errors import DomainError
from app.services import invoices, payment_methods
from app.services.invoices import InvoiceRow
from app.services.payment_methods import MethodView
from app.services.permissions import Permission
from app.state.card_payment import ConfirmedCardPaymentState
from app.state.events import event
from app.state.form import FormState
from app.state.live import LiveState
from app.state.session import acting


def pdf_url(invoice_id: str) -> str:
    return "/api/invoices/" + invoice_id + "/pdf"


class InvoicesState(ConfirmedCardPaymentState, FormState, LiveState, rx.State):
    due: rx.Field[list[InvoiceRow]] = rx.field(default_factory=list)
    history: rx.Field[list[InvoiceRow]] = rx.field(default_factory=list)
    cards: rx.Field[list[MethodView]] = rx.field(default_factory=list)
    can_manage: rx.Field[bool] = rx.field(False)
    # The card the pay dialog charges.
    selected_card: rx.Field[str] = rx.field("")

    def _reload(self, *, reporting: bool = False) -> None:
        """`reporting`: opening the page reads the replica; after a payment, or a change pushed
        live, the primary, which has it already."""
        with acting(self, Permission.BILLING_VIEW, reporting=reporting) as (actor, session):
            self.due = invoices.payments_due(session, actor)
            self.history = invoices.history(session, actor)
            self.can_manage = actor.can(Permission.BILLING_MANAGE)
            self.cards = payment_methods.methods_on_file(session, actor).methods if self.can_manage else []
        self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        self._reload()

    @rx.event
    def load(self):
        self._close_confirm()
        with self._attempt():
            self._reload(reporting=True)

    @event
    def open_pay(self, invoice_id: str):
        self._close_confirm()
        row = next((r for r in self.due if r.id == invoice_id), None)
        if row is None:
            return
        with self._attempt():
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                self.cards = payment_methods.methods_on_file(session, actor).methods
            self.selected_card = self.cards[0].id if self.cards else ""
            self._new_request()
            self._ask(
                "pay",
                target=row.id,
                title=f"Pay invoice {row.number}",
                lines=[f"Charge {row.amount} to one of your saved cards, once."],
                button=f"Pay {row.amount}",
            )

    @event
    def open_balance_pay(self, invoice_id: str):
        self._close_confirm()
        row = next((r for r in self.due if r.id == invoice_id), None)
        if row is None:
            return
        self._ask(
            "balance",
            target=row.id,
            title=f"Pay invoice {row.number} from your credit balance",
            lines=[
                f"{row.amount} comes off your usage credits (any overage it bills is given back to the balance "
                "first), once. Balance History shows it as “Applied credit balance to invoice”."
            ],
            button=f"Pay {row.amount} from balance",
        )

    def _pay_from_balance(self) -> None:
        number = next((r.number for r in self.due if r.id == self.confirm_target), "")
        with self._confirming():
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                invoices.pay_from_balance(session, actor, invoice_id=self.confirm_target)
        if not self.confirm_action:  # paid: the dialog closed
            with self._attempt():
                self._reload()
                self.notice = f"Invoice {number} is paid from your credit balance. Thank you."

    @rx.event
    def set_selected_card(self, value: str):
        self.selected_card = value

    @event
    def confirm(self, request_key: str):
        if not self.confirm_action:
            return  # a click queued behind the one that paid and closed the dialog
        if self.confirm_action == "balance":
            self._pay_from_balance()
            return
        self.confirm_error = ""
        if not self.selected_card:
            self.confirm_error = "Select one of your saved cards."
            return
        self.confirming = True
        yield
        try:
            # The key the dialog showed: a second click on it replays this payment.
            key = self._charge_key_for(request_key, self.confirm_target, self.selected_card)
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                result = invoices.pay_invoice(
                    session,
                    actor,
                    invoice_id=self.confirm_target,
                    payment_method_id=self.selected_card,
                    request_key=key,
                )
        except DomainError as exc:
            self._payment_failed(exc.message)
            return
        yield self._charged(result)

    def _finish_payment(self, payment_intent: str, declined: str) -> invoices.PayResult:
        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            return invoices.finish_invoice_payment(session, actor, payment_intent)

    def _payment_ended(self, result: invoices.PayResult) -> None:
        if result.status not in ("succeeded", "processing", "pending"):
            self._payment_failed(result.message or "The payment failed. Nothing was charged.")
            return
        number = next((r.number for r in self.due if r.id == self.confirm_target), "")
        self._close_confirm()
        with self._attempt():
            self._reload()
            self.notice = (
                f"Invoice {number} is paid. Thank you."
                if result.status == "succeeded"
                else f"Your payment of invoice {number} is processing."
            )


def _download(row: InvoiceRow) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon("download", size=14), "Download PDF", align="center", spacing="1"),
        href=pdf_url(row.id),
        # A file from the API, not a page: the browser downloads it without leaving the page (a
        # document navigation would drop the websocket, and the reconnect reloads the page state).
        reload_document=True,
        custom_attrs={"download": ""},
        size="2",
        aria_label="Download PDF of invoice " + row.number,
    )


def _due_row(row: InvoiceRow) -> rx.Component:
    state = InvoicesState
    return rx.table.row(
        rx.table.cell(row.invoice_date),
        rx.table.cell(
            rx.text(row.number, weight="medium"),
            rx.text(row.description, size="1", color_scheme="gray"),
        ),
        rx.table.cell(
            rx.hstack(
                rx.text(row.due_date),
                rx.cond(row.overdue, rx.badge("Overdue", color_scheme="red", variant="soft")),
                spacing="2",
                align="center",
            )
        ),
        rx.table.cell(row.amount, text_align="right"),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    state.can_manage & (state.cards.length() > 0),
                    rx.button(
                        "Pay",
                        size="1",
                        on_click=state.open_pay(row.id),
                        aria_label="Pay invoice " + row.number,
                    ),
                ),
                rx.cond(
                    state.can_manage & row.from_balance,
                    rx.button(
                        "Pay from balance",
                        size="1",
                        variant="soft",
                        on_click=state.open_balance_pay(row.id),
                        aria_label="Pay invoice " + row.number + " from your credit balance",
                    ),
                ),
                _download(row),
                spacing="3",
                align="center",
            )
        ),
        data_invoice=row.number,
    )


def _history_row(row: InvoiceRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.invoice_date),
        rx.table.cell(
            rx.text(row.number, weight="medium"),
            rx.text(
                rx.match(
                    row.status,
                    ("void", "Void"),
                    ("refunded", "Refunded"),
                    ("disputed", "Disputed"),
                    row.description,
                ),
                size="1",
                color_scheme="gray",
            ),
        ),
        rx.table.cell(row.payment_date),
        rx.table.cell(row.amount, text_align="right"),
        rx.table.cell(_download(row)),
        data_invoice=row.number,
    )


def _pay_dialog() -> rx.Component:
    state = InvoicesState
    return confirm_dialog(
        state,
        color_scheme=None,
        body=rx.cond(
            state.confirm_action == "pay",
            field(
                "Card",
                payment_method_select(
                    state.cards,
                    state.selected_card,
                    state.set_selected_card,
                    select_id="pay_card",
                    placeholder="Select a card",
                ),
                field_id="pay_card",
            ),
        ),
        button_id="confirm-pay",
        request_key=state.request_key,
        max_width="480px",
    )


@console_page("/billing/invoices", "What is due, and every order and invoice so far.", on_load=[InvoicesState.load])
def invoices_page() -> list[rx.Component]:
    state = InvoicesState
    return [
        form_messages(state),
        rx.heading("Payments Due", size="4", as_="h2"),
        rows_or_empty(
            state.due,
            data_table(
                "payments-due",
                ["Invoice Date", "Invoice ID", "Due Date", "Amount"],
                state.due,
                _due_row,
                right_aligned=("Amount",),
            ),
            "Nothing is due. Thank you!",
            empty_id="payments-due-empty",
            icon="circle-check",
        ),
        section_heading("Order and invoice history"),
        rows_or_empty(
            state.history,
            data_table(
                "invoice-history",
                ["Invoice Date", "Invoice ID", "Payment date", "Amount"],
                state.history,
                _history_row,
                right_aligned=("Amount",),
            ),
            "No invoices yet. Credit purchases, recharges and monthly invoices appear here.",
            empty_id="invoice-history-empty",
            icon="receipt",
        ),
        _pay_dialog(),
    ]
