"""Add Usage Credits (seed 003): pay by saved card, a new card, or cryptocurrency."""

from __future__ import annotations

import json

import reflex as rx

from app.components.card_form import capture_form
from app.components.forms import error_of, field, form_messages, request_key_input, text_field
from app.components.layout import console_page
from app.components.panels import payment_method_select
from app.components.tables import data_table, status_badge
from app.errors import ValidationFailed
from app.services import payment_methods, topups
from app.services.money import format_usd
from app.services.payment_methods import MethodView
from app.services.permissions import Permission
from app.services.topups import RecentPayment
from app.state.card_capture import CardCaptureState
from app.state.card_payment import REQUEST_KEY, CardPaymentState
from app.state.live import LiveState
from app.state.session import acting

CRYPTO = "crypto"


class AddCreditsState(CardPaymentState, CardCaptureState, LiveState, rx.State):
    methods: rx.Field[list[MethodView]] = rx.field(default_factory=list)
    recent: rx.Field[list[RecentPayment]] = rx.field(default_factory=list)
    selected: rx.Field[str] = rx.field("")
    balance: rx.Field[str] = rx.field("")
    # Why cryptocurrency is not offered ("" when it is).
    crypto_unavailable: rx.Field[str] = rx.field("")
    invoice_priced: rx.Field[bool] = rx.field(False)
    # The card charge in flight: the button stays busy through 3-D Secure too.
    paying: rx.Field[bool] = rx.field(False)

    def _reload_methods(self, select: str = "") -> None:
        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            on_file = payment_methods.methods_on_file(session, actor)
            self.recent = topups.recent_payments(session, actor, actor.timezone)
            self.balance = topups.current_balance(session, actor)
            self.crypto_unavailable = topups.crypto_unavailable(session, actor)
        self.methods, self.invoice_priced = on_file.methods, on_file.invoice_priced
        self.selected = select or on_file.default_id or (self.selected if self.selected == CRYPTO else "")
        self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        """The payments' statuses; the form keeps its selection."""
        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            self.recent = topups.recent_payments(session, actor, actor.timezone)

    @rx.event
    def load(self):
        self.capture = ""
        self.paying = False
        self._new_request()
        with self._attempt():
            self._reload_methods()
        if self.router.url.query_parameters.get("crypto") == "success":
            self.notice = "Thank you. Your credits are added as soon as the payment is confirmed."

    @rx.event
    def set_selected(self, value: str):
        self.selected = value

    @rx.event
    def submit(self, form_data: dict):
        amount_text = str(form_data.get("amount", ""))
        with self._attempt():
            if not self.selected:
                raise ValidationFailed("Select a payment method.", field="payment_method")
            # The key the form showed: a second click on it replays this payment.
            key = self._charge_key_for(str(form_data.get(REQUEST_KEY, "")), amount_text, self.selected)
            self.paying = True
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                if self.selected == CRYPTO:
                    checkout = topups.start_crypto_topup(session, actor, amount_text=amount_text, request_key=key)
                else:
                    result = topups.start_card_topup(
                        session, actor, amount_text=amount_text, payment_method_id=self.selected, request_key=key
                    )
            if self.selected == CRYPTO:
                yield rx.call_script(f"window.location.href = {json.dumps(checkout.url)}")
            else:
                yield self._charged(result)
        if self.error or self.errors:  # refused before or at the charge
            self.paying = False

    def _finish_payment(self, payment_intent: str, declined: str) -> topups.TopupResult:
        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            return topups.finish_card_topup(session, actor, payment_intent)

    def _payment_failed(self, message: str) -> None:
        self.paying, self.error = False, message

    def _payment_ended(self, result: topups.TopupResult) -> None:
        self.paying = False
        self._reload_methods(select=self.selected)
        if result.status == "succeeded":
            self.notice = f"Added {format_usd(result.amount_cents)} to your balance."
        elif result.status in ("processing", "pending"):
            self.notice = "Your payment is processing. Credits are added as soon as it succeeds."
        else:
            self.error = result.message or "The payment failed. No credits were added."

    def _method_saved(self, label: str, method_id: str) -> None:
        self._reload_methods(select=method_id)


@console_page("/billing/add-usage-credits", on_load=[AddCreditsState.load])
def add_credits_page() -> list[rx.Component]:
    return [
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text("Current balance", color_scheme="gray"),
                    rx.text(AddCreditsState.balance, weight="bold", id="current-balance"),
                    spacing="2",
                ),
                rx.heading("How much would you like to add to your balance?", size="4", as_="h2"),
                form_messages(AddCreditsState),
                rx.form(
                    rx.vstack(
                        text_field(
                            "Payment amount",
                            field_id="amount",
                            error=error_of(AddCreditsState, "amount"),
                            hint="Enter an amount between $5 and $5000.",
                            placeholder="25.00",
                            input_mode="decimal",
                        ),
                        field(
                            "Select a payment method",
                            payment_method_select(
                                AddCreditsState.methods,
                                AddCreditsState.selected,
                                AddCreditsState.set_selected,
                                select_id="payment_method",
                                placeholder="Select Method",
                                extra=(
                                    rx.cond(
                                        AddCreditsState.crypto_unavailable == "",
                                        rx.select.item("Cryptocurrency", value=CRYPTO),
                                    ),
                                ),
                            ),
                            field_id="payment_method",
                            error=error_of(AddCreditsState, "payment_method"),
                        ),
                        rx.cond(
                            AddCreditsState.crypto_unavailable != "",
                            rx.text(
                                AddCreditsState.crypto_unavailable,
                                size="1",
                                color_scheme="gray",
                                id="crypto-unavailable",
                            ),
                        ),
                        rx.cond(
                            (AddCreditsState.capture == "") & ~AddCreditsState.invoice_priced,
                            rx.button(
                                "Add new payment method +",
                                type="button",
                                variant="ghost",
                                on_click=AddCreditsState.open_card_form,
                                id="add-payment-method",
                                align_self="start",
                            ),
                        ),
                        request_key_input(AddCreditsState),
                        rx.button(
                            "Add to my balance",
                            type="submit",
                            loading=AddCreditsState.paying,
                            disabled=AddCreditsState.paying,
                            size="3",
                        ),
                        spacing="4",
                        align="stretch",
                    ),
                    on_submit=AddCreditsState.submit,
                    reset_on_submit=False,
                ),
                capture_form(AddCreditsState),
                spacing="4",
                align="stretch",
            ),
            max_width="560px",
        ),
        rx.cond(AddCreditsState.recent.length() > 0, _recent_payments()),
    ]


def _recent_row(row: RecentPayment) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.when),
        rx.table.cell(row.amount, text_align="right"),
        rx.table.cell(row.how),
        rx.table.cell(
            rx.vstack(
                status_badge(row.status, {"Succeeded": "green", "Failed": "red", "Processing": "amber"}),
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
