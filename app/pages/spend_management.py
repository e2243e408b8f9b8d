"""Spend Management (seed 003): the toggle, credits consumed today and yesterday (UTC), the daily
budget, the notification threshold, the webhook URL with its signing secret and deliveries."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_messages, save_or_read_only, settings_form
from app.components.layout import console_page, section_card
from app.components.panels import stat
from app.components.switched import form_switch, switched_field
from app.components.tables import data_table, rows_or_empty, status_badge
from app.services import spend, webhooks
from app.services.permissions import Permission
from app.services.webhooks import DeliveryRow
from app.state.live import LiveState
from app.state.session import acting
from app.state.switched import SwitchedFormState


class SpendManagementState(SwitchedFormState, LiveState, rx.State):
    daily_budget: rx.Field[str] = rx.field("")
    notify_threshold: rx.Field[str] = rx.field("")
    webhook_url: rx.Field[str] = rx.field("")
    has_saved_webhook: rx.Field[bool] = rx.field(False)
    used_today: rx.Field[str] = rx.field("")
    used_yesterday: rx.Field[str] = rx.field("")
    budget_status: rx.Field[str] = rx.field("")
    budget_reached: rx.Field[bool] = rx.field(False)
    secret_hint: rx.Field[str] = rx.field("")
    revealed_secret: rx.Field[str] = rx.field("")
    deliveries: rx.Field[list[DeliveryRow]] = rx.field(default_factory=list)
    _secret: str = ""

    def _show(self, view: spend.SpendView) -> None:
        self.enabled, self.can_manage, self.deliveries = view.enabled, view.can_manage, view.deliveries
        self.daily_budget, self.notify_threshold = view.daily_budget, view.notify_threshold
        self.webhook_url, self.has_saved_webhook = view.webhook_url, view.webhook_url != ""
        self.used_today, self.used_yesterday = view.used_today, view.used_yesterday
        self.budget_status, self.budget_reached = view.budget_status, view.budget_reached
        self._secret, self.revealed_secret = view.secret, ""
        self.secret_hint = f"whsec_{'•' * 12}{view.secret[-4:]}" if view.secret else ""
        self._remount_form()

    @rx.event
    def load(self):
        with self._attempt(), acting(self, Permission.BILLING_VIEW) as (actor, session):
            self._show(spend.spend_view(session, actor))
            self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        """Only the figures: the form keeps what the user is typing."""
        with acting(self, Permission.BILLING_VIEW) as (actor, session):
            view = spend.spend_view(session, actor)
        self.used_today, self.used_yesterday = view.used_today, view.used_yesterday

    @rx.event
    def save(self, form_data: dict):
        saved = {"daily_budget": self.daily_budget, "notify_threshold": self.notify_threshold}
        values = self._submitted(form_data, {**saved, "webhook_url": self.webhook_url})
        with self._attempt("save"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                spend.save_settings(session, actor, enabled=self.enabled, **values)
                self._show(spend.spend_view(session, actor))
            self.notice = "Your spend management settings are saved."

    @rx.event
    def send_test_event(self):
        with self._attempt("test"):
            yield
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                webhooks.send_test_event(session, actor)
                self._show(spend.spend_view(session, actor))
            self.notice = "A test event is on its way to your webhook URL. Refresh the list to see how it went."

    @rx.event
    def refresh_deliveries(self):
        notice = self.notice
        with self._attempt(), acting(self, Permission.BILLING_VIEW) as (actor, session):
            self._show(spend.spend_view(session, actor))
            self.notice = notice

    @rx.event
    def reveal_secret(self):
        with self._attempt(), acting(self, Permission.BILLING_MANAGE):
            self.revealed_secret = "" if self.revealed_secret else self._secret

    @rx.event
    def copy_secret(self):
        with self._attempt(), acting(self, Permission.BILLING_MANAGE):
            self.notice = "The signing secret is copied to your clipboard."
            return rx.set_clipboard(self._secret)


def _usage_today() -> rx.Component:
    return rx.grid(
        rx.card(stat("Credits Consumed Today", SpendManagementState.used_today, "credits-today", size="6")),
        rx.card(stat("Credits Consumed Yesterday", SpendManagementState.used_yesterday, "credits-yesterday", size="6")),
        columns=rx.breakpoints(initial="1", sm="2"),
        spacing="4",
    )


def _settings_form() -> rx.Component:
    """The switch at the top of the page (seed 003), then today's and yesterday's usage, then the
    settings it turns on; one form, saved by "Save Changes"."""
    state = SpendManagementState
    return settings_form(
        state,
        rx.card(
            rx.vstack(
                form_switch(state, "Spend Management", switch_id="spend_management"),
                rx.text(
                    "When on, a daily budget stops API calls, and a notification threshold sends an email and a "
                    "webhook. Days are UTC days.",
                    size="2",
                    color_scheme="gray",
                ),
                spacing="2",
            ),
        ),
        _usage_today(),
        rx.cond(
            state.budget_status != "",
            rx.callout(
                state.budget_status,
                icon=rx.cond(state.budget_reached, "octagon-x", "info"),
                color_scheme=rx.cond(state.budget_reached, "red", "blue"),
                id="budget-status",
            ),
        ),
        rx.card(
            rx.vstack(
                switched_field(
                    state,
                    "Set daily credit usage budget",
                    "daily_budget",
                    state.daily_budget,
                    hint="In dollars. An API call that would take today's usage past it is refused until the end of "
                    "the day (UTC); a call of exactly what is left passes. Leave empty for no budget.",
                    placeholder="500.00",
                    input_mode="decimal",
                ),
                switched_field(
                    state,
                    "Set a daily credit usage email notification threshold",
                    "notify_threshold",
                    state.notify_threshold,
                    hint="In dollars, at most the budget. When today's usage passes it, we email your billing contacts "
                    "and call the webhook, once that day.",
                    placeholder="500.00",
                    input_mode="decimal",
                ),
                switched_field(
                    state,
                    "Set a webhook URL",
                    "webhook_url",
                    state.webhook_url,
                    hint="Receives a signed POST when the notification threshold or the budget is reached.",
                    type="url",
                    placeholder="https://example.com/hooks/ledgerdesk",
                ),
                save_or_read_only(state, "Save Changes", "Your role can see these settings but not change them."),
                spacing="4",
                align="stretch",
            ),
        ),
        max_width="640px",
    )


def _delivery_row(row: DeliveryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row.event, variant="ghost")),
        rx.table.cell(row.created),
        rx.table.cell(status_badge(row.status, {"delivered": "green", "failed": "red"})),
        rx.table.cell(row.attempts, text_align="right"),
        rx.table.cell(row.last_status, text_align="right"),
        data_delivery=row.id,
    )


def _webhook_card() -> rx.Component:
    state = SpendManagementState
    return section_card(
        "Webhook",
        rx.cond(
            state.can_manage,
            rx.vstack(
                rx.text("Signing secret", weight="medium", size="2"),
                rx.text(
                    "Verify each request's webhook-signature header with this secret (Standard Webhooks).",
                    size="2",
                    color_scheme="gray",
                ),
                rx.hstack(
                    rx.code(
                        rx.cond(state.revealed_secret != "", state.revealed_secret, state.secret_hint),
                        id="webhook-secret",
                    ),
                    rx.button(
                        rx.cond(state.revealed_secret != "", "Hide", "Reveal"),
                        type="button",
                        variant="soft",
                        size="1",
                        on_click=state.reveal_secret,
                    ),
                    rx.button(
                        rx.icon("copy", size=14),
                        "Copy",
                        type="button",
                        variant="soft",
                        size="1",
                        on_click=state.copy_secret,
                    ),
                    align="center",
                    spacing="2",
                    wrap="wrap",
                ),
                spacing="1",
            ),
        ),
        rx.hstack(
            rx.heading("Deliveries", size="3", as_="h3"),
            rx.spacer(),
            rx.button(
                rx.icon("refresh-cw", size=14),
                "Refresh",
                type="button",
                variant="ghost",
                on_click=state.refresh_deliveries,
            ),
            rx.cond(
                state.can_manage,
                rx.button(
                    "Send test event",
                    type="button",
                    variant="outline",
                    loading=state.busy == "test",
                    disabled=~state.has_saved_webhook,
                    on_click=state.send_test_event,
                ),
            ),
            align="center",
            width="100%",
        ),
        rows_or_empty(
            state.deliveries,
            data_table(
                "webhook-deliveries",
                ["Event", "Created", "Status", "Attempts", "Last status code"],
                state.deliveries,
                _delivery_row,
                right_aligned=("Attempts", "Last status code"),
                actions=False,
            ),
            rx.cond(
                state.has_saved_webhook,
                "No deliveries yet. Send a test event to try your endpoint.",
                "No deliveries yet. Save a webhook URL to receive events.",
            ),
            empty_id="webhook-deliveries-empty",
        ),
        rx.text(
            "The latest 20 deliveries; failed attempts are retried with increasing delays.",
            size="1",
            color_scheme="gray",
        ),
    )


@console_page(
    "/billing/spend-management",
    "Control and monitor your organization's credit usage and expenses.",
    on_load=[SpendManagementState.load],
)
def spend_management_page() -> list[rx.Component]:
    return [
        form_messages(SpendManagementState),
        _settings_form(),
        _webhook_card(),
    ]
