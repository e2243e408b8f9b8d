"""Spend Management (seed 003): the toggle, credits consumed today and yesterday (UTC), the daily
budget, the notification threshold, the webhook URL with its signing secret and deliveries."""

from __future__ import annotations

import reflex as rx

from app.components.forms import field, form_error, form_notice
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError, FormInvalid
from app.models import Account
from app.services import spend, webhooks
from app.services.money import format_usd, plain_dollars
from app.services.permissions import Permission
from app.services.timefmt import format_datetime
from app.state.session import current_actor

FIELDS = ("daily_budget", "notify_threshold", "webhook_url")


def _dollars(cents: int | None) -> str:
    return plain_dollars(cents) if cents is not None else ""


class SpendManagementState(rx.State):
    enabled: bool = False
    daily_budget: str = ""
    notify_threshold: str = ""
    webhook_url: str = ""
    has_saved_webhook: bool = False
    used_today: str = ""
    used_yesterday: str = ""
    can_manage: bool = False
    secret_hint: str = ""
    revealed_secret: str = ""
    deliveries: list[dict[str, str]] = []
    daily_budget_error: str = ""
    notify_threshold_error: str = ""
    webhook_url_error: str = ""
    error: str = ""
    notice: str = ""
    saving: bool = False
    sending_test: bool = False
    _secret: str = ""

    def _clear_messages(self) -> None:
        self.daily_budget_error = self.notify_threshold_error = self.webhook_url_error = self.error = ""

    def _reload(self) -> None:
        actor = current_actor(self, Permission.BILLING_VIEW)
        with transaction() as session:
            view = spend.spend_settings(session, actor)
            self._secret = spend.webhook_secret(session, actor) if actor.can(Permission.BILLING_MANAGE) else ""
            rows = webhooks.recent_deliveries(session, actor)
            timezone = session.get(Account, actor.account_id).timezone
        self.can_manage = actor.can(Permission.BILLING_MANAGE)
        self.enabled = view.enabled
        self.daily_budget = _dollars(view.daily_budget_cents)
        self.notify_threshold = _dollars(view.daily_notify_threshold_cents)
        self.webhook_url = view.webhook_url
        self.has_saved_webhook = view.webhook_url != ""
        self.used_today = format_usd(view.used_today_cents)
        self.used_yesterday = format_usd(view.used_yesterday_cents)
        self.secret_hint = f"whsec_{'•' * 12}{self._secret[-4:]}" if self._secret else ""
        self.revealed_secret = ""
        self.deliveries = [
            {
                "id": row.public_id,
                "event": row.event_type,
                "created": format_datetime(row.created_at, timezone),
                "status": row.status,
                "attempts": str(row.attempts),
                "last_status": str(row.last_status_code) if row.last_status_code is not None else "—",
            }
            for row in rows
        ]

    @rx.event
    def load(self):
        self._clear_messages()
        self.notice = ""
        self.saving = self.sending_test = False
        try:
            self._reload()
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_enabled(self, value: bool):
        self.enabled = value

    @rx.event
    def set_daily_budget(self, value: str):
        self.daily_budget = value

    @rx.event
    def set_notify_threshold(self, value: str):
        self.notify_threshold = value

    @rx.event
    def set_webhook_url(self, value: str):
        self.webhook_url = value

    @rx.event
    def save(self, form_data: dict):
        self._clear_messages()
        self.notice = ""
        # Disabled inputs (spend management off) are not submitted: keep what they show.
        values = {name: str(form_data.get(name, getattr(self, name))) for name in FIELDS}
        self.saving = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                spend.save_settings(session, actor, enabled=self.enabled, **values)
            self._reload()
        except FormInvalid as exc:
            for name, message in exc.errors.items():
                setattr(self, f"{name}_error", message)
        except DomainError as exc:
            self.error = exc.message
        else:
            self.notice = "Your spend management settings are saved."
        self.saving = False

    @rx.event
    def send_test_event(self):
        self._clear_messages()
        self.notice = ""
        self.sending_test = True
        yield
        try:
            actor = current_actor(self, Permission.BILLING_MANAGE)
            with transaction() as session:
                webhooks.send_test_event(session, actor)
            self._reload()
        except DomainError as exc:
            self.error = exc.message
        else:
            self.notice = "A test event is on its way to your webhook URL. Refresh the list to see how it went."
        self.sending_test = False

    @rx.event
    def refresh_deliveries(self):
        self.error = ""
        try:
            self._reload()
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def reveal_secret(self):
        try:
            current_actor(self, Permission.BILLING_MANAGE)
        except DomainError as exc:
            self.error = exc.message
            return
        self.revealed_secret = "" if self.revealed_secret else self._secret

    @rx.event
    def copy_secret(self):
        try:
            current_actor(self, Permission.BILLING_MANAGE)
        except DomainError as exc:
            self.error = exc.message
            return
        self.notice = "The signing secret is copied to your clipboard."
        return rx.set_clipboard(self._secret)


def _consumed(title: str, value: rx.Var, figure_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(title, color_scheme="gray", size="2"),
            rx.text(value, size="6", weight="bold", id=figure_id),
            spacing="1",
        ),
    )


def _amount_input(name: str, value: rx.Var, on_change) -> rx.Component:
    state = SpendManagementState
    return rx.input(
        id=name,
        name=name,
        value=value,
        on_change=on_change,
        placeholder="500.00",
        input_mode="decimal",
        disabled=~state.enabled | ~state.can_manage,
        width="100%",
    )


def _settings_form() -> rx.Component:
    state = SpendManagementState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.switch(
                        id="spend_management",
                        checked=state.enabled,
                        on_change=state.set_enabled,
                        disabled=~state.can_manage,
                    ),
                    rx.el.label("Spend Management", html_for="spend_management", class_name="ld-label"),
                    align="center",
                    spacing="3",
                ),
                rx.text(
                    "When on, a daily budget stops API calls, and a notification threshold sends an email and a "
                    "webhook. Days are UTC days.",
                    size="2",
                    color_scheme="gray",
                ),
                field(
                    "Set daily credit usage budget",
                    _amount_input("daily_budget", state.daily_budget, state.set_daily_budget),
                    field_id="daily_budget",
                    error=state.daily_budget_error,
                    hint="In dollars. When today's usage reaches it, new API calls are refused until the end of the "
                    "day (UTC). Leave empty for no budget.",
                ),
                field(
                    "Set a daily credit usage email notification threshold",
                    _amount_input("notify_threshold", state.notify_threshold, state.set_notify_threshold),
                    field_id="notify_threshold",
                    error=state.notify_threshold_error,
                    hint="In dollars, at most the budget. When today's usage passes it, we email your billing contacts "
                    "and call the webhook, once that day.",
                ),
                field(
                    "Set a webhook URL",
                    rx.input(
                        id="webhook_url",
                        name="webhook_url",
                        type="url",
                        value=state.webhook_url,
                        on_change=state.set_webhook_url,
                        placeholder="https://example.com/hooks/ledgerdesk",
                        disabled=~state.enabled | ~state.can_manage,
                        width="100%",
                    ),
                    field_id="webhook_url",
                    error=state.webhook_url_error,
                    hint="Receives a signed POST when the notification threshold or the budget is reached.",
                ),
                rx.cond(
                    state.can_manage,
                    rx.button("Save Changes", type="submit", loading=state.saving, size="3", align_self="start"),
                    rx.text("Your role can see these settings but not change them.", size="2", color_scheme="gray"),
                ),
                spacing="4",
                align="stretch",
            ),
            on_submit=state.save,
            reset_on_submit=False,
        ),
        max_width="640px",
    )


def _delivery_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row["event"], variant="ghost")),
        rx.table.cell(row["created"]),
        rx.table.cell(
            rx.badge(
                row["status"],
                color_scheme=rx.match(row["status"], ("delivered", "green"), ("failed", "red"), "gray"),
            )
        ),
        rx.table.cell(row["attempts"], text_align="right"),
        rx.table.cell(row["last_status"], text_align="right"),
        data_delivery=row["id"],
    )


def _webhook_card() -> rx.Component:
    state = SpendManagementState
    return rx.card(
        rx.vstack(
            rx.heading("Webhook", size="4", as_="h2"),
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
                    align="start",
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
                        loading=state.sending_test,
                        disabled=~state.has_saved_webhook,
                        on_click=state.send_test_event,
                    ),
                ),
                align="center",
                width="100%",
            ),
            rx.cond(
                state.deliveries.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Event"),
                            rx.table.column_header_cell("Created"),
                            rx.table.column_header_cell("Status"),
                            rx.table.column_header_cell("Attempts", text_align="right"),
                            rx.table.column_header_cell("Last status code", text_align="right"),
                        )
                    ),
                    rx.table.body(rx.foreach(state.deliveries, _delivery_row)),
                    variant="surface",
                    width="100%",
                    id="webhook-deliveries",
                ),
                rx.callout(
                    rx.cond(
                        state.has_saved_webhook,
                        "No deliveries yet. Send a test event to try your endpoint.",
                        "No deliveries yet. Save a webhook URL to receive events.",
                    ),
                    icon="info",
                    id="webhook-deliveries-empty",
                ),
            ),
            rx.text(
                "The latest 20 deliveries; failed attempts are retried with increasing delays.",
                size="1",
                color_scheme="gray",
            ),
            spacing="3",
            align="stretch",
        ),
    )


@console_page(
    route="/billing/spend-management",
    title="Spend Management",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    nav_label="Spend Management",
    order=130,
    on_load=[SpendManagementState.load],
)
def spend_management_page() -> rx.Component:
    return rx.vstack(
        page_heading("Spend Management", "Control and monitor your organization's credit usage and expenses."),
        form_notice(SpendManagementState.notice),
        form_error(SpendManagementState.error),
        rx.grid(
            _consumed("Credits Consumed Today", SpendManagementState.used_today, "credits-today"),
            _consumed("Credits Consumed Yesterday", SpendManagementState.used_yesterday, "credits-yesterday"),
            columns=rx.breakpoints(initial="1", sm="2"),
            spacing="4",
            max_width="640px",
        ),
        _settings_form(),
        _webhook_card(),
        spacing="4",
        align="stretch",
    )
