"""Auto Recharge (seed 003): the toggle, the balance that triggers a recharge and the amount it
adds to the balance, charged to the default card."""

from __future__ import annotations

import reflex as rx

from app.components.forms import field, form_error, form_notice
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError, FormInvalid
from app.services import recharge
from app.services.money import format_usd, parse_dollars, plain_dollars
from app.services.permissions import Permission
from app.state.session import current_actor

FIELDS = ("threshold", "amount")


class AutoRechargeState(rx.State):
    enabled: bool = False
    threshold: str = ""
    amount: str = ""
    disabled_reason: str = ""
    invoice_priced: bool = False
    default_card: str = ""
    balance: str = ""
    in_flight: bool = False
    can_manage: bool = False
    threshold_error: str = ""
    amount_error: str = ""
    error: str = ""
    notice: str = ""
    saving: bool = False

    def _clear_messages(self) -> None:
        self.threshold_error = self.amount_error = self.error = ""

    def _reload(self) -> None:
        actor = current_actor(self, Permission.BILLING_VIEW)
        with transaction() as session:
            view = recharge.recharge_settings(session, actor)
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.enabled = view.enabled
        # Never saved yet: suggest the seed's example amounts rather than $0.
        self.threshold = plain_dollars(view.threshold_cents) if view.amount_cents else "20.00"
        self.amount = plain_dollars(view.amount_cents) if view.amount_cents else "50.00"
        self.disabled_reason = view.disabled_reason
        self.invoice_priced = view.invoice_priced
        self.default_card = view.default_card
        self.balance = format_usd(view.balance_cents)
        self.in_flight = view.in_flight

    @rx.event
    def load(self):
        self._clear_messages()
        self.notice = ""
        self.saving = False
        try:
            self._reload()
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_enabled(self, value: bool):
        self.enabled = value

    @rx.event
    def set_threshold(self, value: str):
        self.threshold = value

    @rx.event
    def set_amount(self, value: str):
        self.amount = value

    @rx.event
    def save(self, form_data: dict):
        self._clear_messages()
        self.notice = ""
        # Disabled inputs (auto recharge off) are not submitted: keep what they show.
        threshold, amount = (str(form_data.get(name, getattr(self, name))) for name in FIELDS)
        enabled = self.enabled
        self.saving = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                started = recharge.save_settings(session, actor, enabled, threshold, amount)
            self._reload()
        except FormInvalid as exc:
            for name, message in exc.errors.items():
                setattr(self, f"{name}_error", message)
        except DomainError as exc:
            self.error = exc.message
        else:
            self.notice = _saved_notice(enabled, started, threshold, amount)
        self.saving = False


def _saved_notice(enabled: bool, started: bool, threshold: str, amount: str) -> str:
    if not enabled:
        return "Auto recharge is off."
    threshold_usd, amount_usd = format_usd(parse_dollars(threshold)), format_usd(parse_dollars(amount))
    if started:
        return f"Auto recharge is on. Your balance is at or below {threshold_usd}, so we are adding {amount_usd} now."
    return f"Auto recharge is on: when your balance falls to {threshold_usd}, we add {amount_usd}."


def _amount_input(name: str, value: rx.Var, on_change, placeholder: str) -> rx.Component:
    state = AutoRechargeState
    return rx.input(
        id=name,
        name=name,
        value=value,
        on_change=on_change,
        placeholder=placeholder,
        input_mode="decimal",
        disabled=~state.enabled | ~state.can_manage,
        width="100%",
    )


def _no_card() -> rx.Component:
    return rx.callout(
        rx.text(
            f"{recharge.NO_CARD_MESSAGE} ",
            rx.link("Go to Payment Methods", href="/billing/payment-methods", id="payment-methods-link"),
        ),
        icon="credit_card",
        color_scheme="amber",
        id="no-card",
        width="100%",
    )


def _settings_form() -> rx.Component:
    state = AutoRechargeState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.switch(
                        id="auto_recharge",
                        checked=state.enabled,
                        on_change=state.set_enabled,
                        # Without a card it can only be turned off.
                        disabled=~state.can_manage | ((state.default_card == "") & ~state.enabled),
                    ),
                    rx.el.label("Setting to Auto Recharge", html_for="auto_recharge", class_name="ld-label"),
                    align="center",
                    spacing="3",
                ),
                field(
                    "When balance falls to",
                    _amount_input("threshold", state.threshold, state.set_threshold, "20.00"),
                    field_id="threshold",
                    error=state.threshold_error,
                    hint="In dollars, from $0 to $5000. A recharge starts when a charge takes your balance to or "
                    "below it.",
                ),
                field(
                    "Amount to add",
                    _amount_input("amount", state.amount, state.set_amount, "50.00"),
                    field_id="amount",
                    error=state.amount_error,
                    hint="Enter an amount between $5 and $5000.",
                ),
                rx.cond(
                    state.default_card != "",
                    rx.text(
                        "Charged to your default card: ",
                        rx.text.strong(state.default_card),
                        size="2",
                        id="recharge-card",
                    ),
                ),
                rx.cond(
                    state.can_manage,
                    rx.button("Save changes", type="submit", loading=state.saving, size="3", align_self="start"),
                    rx.text(
                        "Only members who manage billing can change these settings.", size="2", color_scheme="gray"
                    ),
                ),
                spacing="4",
                align="stretch",
            ),
            on_submit=state.save,
            reset_on_submit=False,
        ),
        max_width="560px",
    )


@console_page(
    route="/billing/auto-recharge",
    title="Auto Recharge",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Auto Recharge",
    order=150,
    on_load=[AutoRechargeState.load],
)
def auto_recharge_page() -> rx.Component:
    state = AutoRechargeState
    return rx.vstack(
        page_heading("Auto Recharge"),
        rx.text(
            "Keep your service running by setting up auto-recharge. When your balance reaches a certain threshold, "
            "we will automatically charge your card.",
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(
            state.disabled_reason != "",
            rx.callout(
                state.disabled_reason,
                icon="circle_alert",
                color_scheme="amber",
                id="auto-recharge-disabled-reason",
                width="100%",
            ),
        ),
        rx.cond(
            state.invoice_priced,
            rx.callout(recharge.INVOICE_PRICED_MESSAGE, icon="info", id="invoice-priced", width="100%"),
            rx.vstack(
                rx.cond(state.default_card == "", _no_card()),
                rx.hstack(
                    rx.text("Current balance:", color_scheme="gray"),
                    rx.text(state.balance, weight="bold", id="current-balance"),
                    rx.cond(
                        state.in_flight,
                        rx.badge("Recharge in progress", color_scheme="blue", id="recharge-in-flight"),
                    ),
                    align="center",
                ),
                _settings_form(),
                spacing="4",
                align="stretch",
            ),
        ),
        spacing="4",
        align="stretch",
    )
