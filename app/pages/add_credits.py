"""Add Usage Credits (seed 003): pay by saved card, a new card, or cryptocurrency."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import reflex as rx

from app.components.card_form import card_form, confirm_payment_script
from app.components.forms import field, form_error, form_notice
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError
from app.services import payment_methods, topups
from app.services.company import account_timezone
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.permissions import Permission
from app.state.card_capture import CardCaptureState
from app.state.session import current_actor

CRYPTO = "crypto"


@dataclass
class PaymentRow:
    when: str = ""
    amount: str = ""
    how: str = ""
    status: str = ""
    reason: str = ""


class AddCreditsState(CardCaptureState, rx.State):
    methods: list[dict[str, str]] = []
    recent: list[PaymentRow] = []
    selected: str = ""
    amount_error: str = ""
    method_error: str = ""
    error: str = ""
    notice: str = ""
    submitting: bool = False
    invoice_priced: bool = False
    _request_key: str = ""

    def _reload_methods(self, select: str = "") -> None:
        actor = current_actor(self, Permission.BILLING_MANAGE)
        with transaction() as session:
            rows = payment_methods.saved_methods(session, actor)
            self.invoice_priced = billing_settings(session, actor.account_id).invoice_priced
            recent = topups.recent_payments(session, actor, account_timezone(session, actor))
        self.recent = [PaymentRow(p.when, p.amount, p.how, p.status, p.reason) for p in recent]
        self.methods = [{"value": m.stripe_payment_method_id, "label": payment_methods.describe(m)} for m in rows]
        default = next((m.stripe_payment_method_id for m in rows if m.is_default), "")
        self.selected = select or default or (self.selected if self.selected == CRYPTO else "")

    def _clear_messages(self) -> None:
        self.amount_error = self.method_error = self.error = ""

    @rx.event
    def load(self):
        self._clear_messages()
        self.notice = ""
        self.show_card_form = False
        self._request_key = secrets.token_urlsafe(16)
        try:
            self._reload_methods()
        except DomainError as exc:
            self.error = exc.message
        if self.router.url.query_parameters.get("crypto") == "success":
            self.notice = "Thank you. Your credits are added as soon as the payment is confirmed."

    @rx.event
    def set_selected(self, value: str):
        self.selected = value

    @rx.event
    def submit(self, form_data: dict):
        self._clear_messages()
        self.notice = ""
        amount_text = str(form_data.get("amount", ""))
        if not self.selected:
            self.method_error = "Select a payment method."
            return
        self.submitting = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                if self.selected == CRYPTO:
                    checkout = topups.start_crypto_topup(
                        session, actor, amount_text=amount_text, request_key=self._request_key
                    )
                else:
                    result = topups.start_card_topup(
                        session,
                        actor,
                        amount_text=amount_text,
                        payment_method_id=self.selected,
                        request_key=self._request_key,
                    )
        except DomainError as exc:
            self.submitting = False
            self._show_error(exc)
            return
        if self.selected == CRYPTO:
            yield rx.call_script(f"window.location.href = {json.dumps(checkout.url)}")
            return
        if result.status == "requires_action":
            yield rx.call_script(
                confirm_payment_script(result.client_secret), callback=AddCreditsState.payment_confirmed
            )
            return
        self._show_result(result)

    @rx.event
    def payment_confirmed(self, outcome: dict):
        """After Stripe.js finished 3-D Secure: the server asks Stripe how it ended."""
        payment_intent = str(outcome.get("payment_intent") or "")
        if not outcome.get("ok") and not payment_intent:
            self.submitting = False
            self.error = str(outcome.get("error") or "The card could not be authenticated.")
            self._request_key = secrets.token_urlsafe(16)
            return
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                result = topups.finish_card_topup(session, actor, payment_intent)
        except DomainError as exc:
            self.submitting = False
            self._show_error(exc)
            return
        self._show_result(result)

    def _show_result(self, result: topups.TopupResult) -> None:
        self.submitting = False
        self._reload_methods(select=self.selected)
        self._request_key = secrets.token_urlsafe(16)
        if result.status == "succeeded":
            self.notice = f"Added {format_usd(result.amount_cents)} to your balance."
        elif result.status == "processing":
            self.notice = "Your payment is processing. Credits are added as soon as it succeeds."
        else:
            self.error = result.message or "The payment failed. No credits were added."

    def _show_error(self, exc: DomainError) -> None:
        if exc.field == "amount":
            self.amount_error = exc.message
        elif exc.field == "payment_method":
            self.method_error = exc.message
        else:
            self.error = exc.message

    def _card_saved(self, actor, method) -> None:
        self._reload_methods(select=method.stripe_payment_method_id)


@console_page(
    route="/billing/add-usage-credits",
    title="Add Usage Credits",
    permission=Permission.BILLING_MANAGE,
    section="Billing",
    order=140,
    on_load=[AddCreditsState.load],
)
def add_credits_page() -> rx.Component:
    return rx.vstack(
        page_heading("Add Usage Credits"),
        rx.card(
            rx.vstack(
                rx.heading("How much would you like to add to your balance?", size="4", as_="h2"),
                form_notice(AddCreditsState.notice),
                form_error(AddCreditsState.error),
                rx.form(
                    rx.vstack(
                        field(
                            "Payment amount",
                            rx.input(
                                id="amount", name="amount", placeholder="25.00", input_mode="decimal", width="100%"
                            ),
                            field_id="amount",
                            error=AddCreditsState.amount_error,
                            hint="Enter an amount between $5 and $5000.",
                        ),
                        field(
                            "Select a payment method",
                            rx.select.root(
                                rx.select.trigger(placeholder="Select Method", id="payment_method", width="100%"),
                                rx.select.content(
                                    rx.foreach(
                                        AddCreditsState.methods,
                                        lambda m: rx.select.item(m["label"], value=m["value"]),
                                    ),
                                    rx.select.item("Cryptocurrency", value=CRYPTO),
                                ),
                                value=AddCreditsState.selected,
                                on_change=AddCreditsState.set_selected,
                            ),
                            field_id="payment_method",
                            error=AddCreditsState.method_error,
                        ),
                        rx.cond(
                            ~AddCreditsState.show_card_form & ~AddCreditsState.invoice_priced,
                            rx.button(
                                "Add new payment method +",
                                type="button",
                                variant="ghost",
                                on_click=AddCreditsState.open_card_form,
                                id="add-payment-method",
                                align_self="start",
                            ),
                        ),
                        rx.button("Add to my balance", type="submit", loading=AddCreditsState.submitting, size="3"),
                        spacing="4",
                        align="stretch",
                    ),
                    on_submit=AddCreditsState.submit,
                    reset_on_submit=False,
                ),
                rx.cond(
                    AddCreditsState.show_card_form,
                    card_form(
                        on_submit=AddCreditsState.save_card,
                        on_cancel=AddCreditsState.close_card_form,
                        error=AddCreditsState.card_error,
                        saving=AddCreditsState.saving_card,
                    ),
                ),
                spacing="4",
                align="stretch",
            ),
            max_width="560px",
        ),
        rx.cond(AddCreditsState.recent.length() > 0, _recent_payments()),
        align="stretch",
        spacing="4",
    )


def _recent_row(row: PaymentRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.when),
        rx.table.cell(row.amount, text_align="right"),
        rx.table.cell(row.how),
        rx.table.cell(
            rx.vstack(
                rx.badge(
                    row.status,
                    color_scheme=rx.match(
                        row.status, ("Succeeded", "green"), ("Failed", "red"), ("Processing", "amber"), "gray"
                    ),
                ),
                rx.cond(row.reason != "", rx.text(row.reason, size="1", color_scheme="red")),
                spacing="1",
            )
        ),
    )


def _recent_payments() -> rx.Component:
    return rx.vstack(
        rx.heading("Recent payments", size="4", as_="h2"),
        data_table(
            "recent-payments",
            ["Date", "Amount", "Paid with", "Status"],
            AddCreditsState.recent,
            _recent_row,
            right_aligned=("Amount",),
            actions=False,
        ),
        rx.text(
            "Bank debits (SEPA) take a few days: credits are added when the bank confirms the payment.",
            size="1",
            color_scheme="gray",
        ),
        spacing="2",
        align="stretch",
    )
