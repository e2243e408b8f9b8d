"""Auto Recharge (seed 003): the toggle, the balance that triggers a recharge and the amount it
adds to the balance, charged to the default card."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_messages, save_or_read_only, settings_form
from app.components.layout import console_page
from app.components.panels import no_payment_method
from app.components.switched import form_switch, switched_field
from app.services import recharge
from app.services.money import format_usd, parse_dollars, plain_dollars
from app.services.permissions import Actor, Permission
from app.state.session import acting
from app.state.switched import SwitchedFormState


class AutoRechargeState(SwitchedFormState, rx.State):
    threshold: rx.Field[str] = rx.field("")
    amount: rx.Field[str] = rx.field("")
    ceiling: rx.Field[str] = rx.field("")
    paused_reason: rx.Field[str] = rx.field("")
    disabled_reason: rx.Field[str] = rx.field("")
    invoice_priced: rx.Field[bool] = rx.field(False)
    default_card: rx.Field[str] = rx.field("")
    balance: rx.Field[str] = rx.field("")
    in_flight: rx.Field[bool] = rx.field(False)

    def _show(self, actor: Actor, view: recharge.RechargeSettings) -> None:
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.enabled = view.enabled
        # Never saved yet: suggest amounts that pass the form's rules rather than $0.
        saved = bool(view.amount_cents)
        self.threshold = plain_dollars(view.threshold_cents if saved else recharge.SUGGESTED_THRESHOLD_CENTS)
        self.amount = plain_dollars(
            view.amount_cents if saved else recharge.suggested_amount_cents(view.overage_line_cents)
        )
        self.ceiling = plain_dollars(view.ceiling_cents) if view.ceiling_cents is not None else ""
        self.disabled_reason = view.disabled_reason
        self.paused_reason = view.paused_reason
        self.invoice_priced = view.invoice_priced
        self.default_card = view.default_card
        self.balance = format_usd(view.balance_cents)
        self.in_flight = view.in_flight
        self._remount_form()

    @rx.event
    def load(self):
        with self._attempt(), acting(self, Permission.BILLING_VIEW) as (actor, session):
            self._show(actor, recharge.recharge_settings(session, actor))

    @rx.event
    def save(self, form_data: dict):
        values = self._submitted(
            form_data, {"threshold": self.threshold, "amount": self.amount, "ceiling": self.ceiling}
        )
        threshold, amount, enabled = values["threshold"], values["amount"], self.enabled
        with self._attempt("save"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                started = recharge.save_settings(session, actor, enabled, threshold, amount, values["ceiling"])
                self._show(actor, recharge.recharge_settings(session, actor))
            self.notice = _saved_notice(enabled, started, threshold, amount)


def _saved_notice(enabled: bool, started: bool, threshold: str, amount: str) -> str:
    if not enabled:
        return "Auto recharge is off."
    threshold_usd, amount_usd = format_usd(parse_dollars(threshold)), format_usd(parse_dollars(amount))
    if started:
        return f"Auto recharge is on. Your balance is at or below {threshold_usd}, so we are adding {amount_usd} now."
    return f"Auto recharge is on: when your balance falls to {threshold_usd}, we add {amount_usd}."


def _settings_form() -> rx.Component:
    state = AutoRechargeState
    return rx.card(
        settings_form(
            state,
            form_switch(
                state,
                "Setting to Auto Recharge",
                switch_id="auto_recharge",
                # Without a card it can only be turned off.
                disabled=(state.default_card == "") & ~state.enabled,
            ),
            switched_field(
                state,
                "When balance falls to",
                "threshold",
                state.threshold,
                hint="In dollars, from $0 to $5000. A recharge starts when a charge takes your balance to or below it.",
                placeholder="20.00",
                input_mode="decimal",
            ),
            switched_field(
                state,
                "Amount to add",
                "amount",
                state.amount,
                hint="Between $5 and $5000, and more than the threshold plus your overage protection, so that "
                "one recharge lifts your balance above the threshold.",
                placeholder="50.00",
                input_mode="decimal",
            ),
            switched_field(
                state,
                "At most per calendar month (optional)",
                "ceiling",
                state.ceiling,
                hint="At most this much of automatic top-ups per calendar month (UTC). A recharge that would pass "
                "it is not made: auto recharge pauses until the next month. Leave empty for no ceiling.",
                placeholder="No ceiling",
                input_mode="decimal",
            ),
            rx.cond(
                state.default_card != "",
                rx.text(
                    "Charged to your default card: ", rx.text.strong(state.default_card), size="2", id="recharge-card"
                ),
            ),
            save_or_read_only(state, "Save changes", "Only members who manage billing can change these settings."),
        ),
        max_width="560px",
    )


@console_page("/billing/auto-recharge", on_load=[AutoRechargeState.load])
def auto_recharge_page() -> list[rx.Component]:
    state = AutoRechargeState
    return [
        rx.text(
            "Keep your service running by setting up auto-recharge. When your balance reaches a certain threshold, "
            "we will automatically charge your card.",
        ),
        form_messages(state),
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
            state.paused_reason != "",
            rx.callout(
                state.paused_reason,
                icon="circle_pause",
                color_scheme="amber",
                id="auto-recharge-paused",
                width="100%",
            ),
        ),
        rx.cond(
            state.invoice_priced,
            rx.callout(recharge.INVOICE_PRICED_MESSAGE, icon="info", id="invoice-priced", width="100%"),
            rx.vstack(
                rx.cond(
                    state.default_card == "",
                    no_payment_method(f"{recharge.NO_CARD_MESSAGE} ", "/billing/payment-methods"),
                ),
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
    ]
