"""API Keys (seeds 000, 001, 002): add a key with an optional name, see the full key once, list
the keys, set or clear a key's daily budget, and delete one after confirmation; the metering API
refuses it on the next call."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import confirm_dialog, form_dialog
from app.components.forms import error_of, form_messages, text_field
from app.components.layout import console_page
from app.components.tables import data_table, rows_or_empty
from app.services import api_keys
from app.services.api_keys import UNNAMED, KeyRow
from app.services.money import format_usd
from app.services.permissions import Permission
from app.state.confirm import ConfirmState
from app.state.events import event
from app.state.form import FormState
from app.state.session import acting


class ApiKeysState(FormState, ConfirmState, rx.State):
    keys: rx.Field[list[KeyRow]] = rx.field(default_factory=list)
    # The "Add API Key" dialog.
    adding: rx.Field[bool] = rx.field(False)
    # The one-time display of a new key; cleared when its dialog closes.
    created_key: rx.Field[str] = rx.field("")
    created_name: rx.Field[str] = rx.field("")
    # The key whose daily budget dialog is open ("" when none), its name and its budget as typed.
    budget_key: rx.Field[str] = rx.field("")
    budget_key_name: rx.Field[str] = rx.field("")
    budget_value: rx.Field[str] = rx.field("")

    @rx.event
    def load(self):
        self.adding = False
        self.budget_key = ""
        self.created_key = self.created_name = ""
        self._close_confirm()
        with self._attempt(), acting(self, Permission.API_KEYS_MANAGE) as (actor, session):
            self.keys = api_keys.key_rows(session, actor)

    @rx.event
    def open_add(self):
        self._clear_messages()
        self.adding = True

    @rx.event
    def add_open_change(self, is_open: bool):
        if not is_open and self.busy != "create":
            self.adding = False

    @rx.event
    def create(self, form_data: dict):
        name = str(form_data.get("key_name", "")).strip() or UNNAMED
        with self._attempt("create"):
            yield
            with acting(self, Permission.API_KEYS_MANAGE) as (actor, session):
                key, full_key = api_keys.create_key(session, actor, name)
                self.keys = api_keys.key_rows(session, actor)
            self.created_key, self.created_name = full_key, key.name
        # A refused name stays in the dialog; any other outcome closes it.
        self.adding = "name" in self.errors

    @rx.event
    def created_open_change(self, is_open: bool):
        if not is_open:
            self.created_key = self.created_name = ""

    @event
    def open_budget(self, key_id: str):
        self._clear_messages()
        row = next((k for k in self.keys if k.id == key_id), None)
        if row is not None:
            self.budget_key, self.budget_key_name, self.budget_value = row.id, row.name, row.daily_budget

    @rx.event
    def budget_open_change(self, is_open: bool):
        if not is_open and self.busy != "budget":
            self.budget_key = ""

    @rx.event
    def save_budget(self, form_data: dict):
        budget = str(form_data.get("daily_budget", ""))
        with self._attempt("budget"):
            yield
            with acting(self, Permission.API_KEYS_MANAGE) as (actor, session):
                key = api_keys.set_daily_budget(session, actor, self.budget_key, budget)
                self.keys = api_keys.key_rows(session, actor)
            self.notice = (
                f"{self.budget_key_name} may use at most {format_usd(key.daily_budget_cents)} a day (UTC)."
                if key.daily_budget_cents is not None
                else f"{self.budget_key_name} has no daily budget of its own."
            )
        # A refused amount stays in the dialog; any other outcome closes it.
        if "daily_budget" not in self.errors:
            self.budget_key = ""

    @event
    def ask_delete(self, key_id: str):
        self._clear_messages()
        row = next((k for k in self.keys if k.id == key_id), None)
        if row is not None:
            question = (
                f"Delete {row.name} ({row.prefix})? It stops working at once: the API rejects every further "
                "request made with it. This cannot be undone."
            )
            self._ask("delete", target=row.id, title="Delete API Key", lines=[question], button="Delete API Key")

    @rx.event
    def confirm(self):
        row = next((k for k in self.keys if k.id == self.confirm_target), None)
        label = f"{row.name} ({row.prefix})" if row else ""
        with self._confirming():
            yield
            with acting(self, Permission.API_KEYS_MANAGE) as (actor, session):
                api_keys.delete_key(session, actor, self.confirm_target)
                self.keys = api_keys.key_rows(session, actor)
            self.notice = f"{label} is deleted. The API refuses it from now on."


def _row(key: KeyRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(key.name, weight="medium")),
        rx.table.cell(rx.code(key.prefix, variant="ghost")),
        rx.table.cell(key.created),
        rx.table.cell(key.created_by),
        rx.table.cell(key.last_used),
        rx.table.cell(key.used_today, text_align="right"),
        rx.table.cell(key.used_this_month, text_align="right"),
        rx.table.cell(
            rx.hstack(
                rx.text(key.daily_budget_shown),
                rx.icon_button(
                    rx.icon("pencil", size=14),
                    size="1",
                    variant="ghost",
                    aria_label="Set the daily budget of " + key.name,
                    on_click=ApiKeysState.open_budget(key.id),
                ),
                align="center",
                spacing="2",
            )
        ),
        rx.table.cell(
            rx.button(
                rx.icon("trash-2", size=14),
                "Delete API Key",
                size="1",
                variant="soft",
                color_scheme="red",
                aria_label="Delete API Key " + key.name,
                on_click=ApiKeysState.ask_delete(key.id),
            ),
            text_align="right",
        ),
        data_key=key.id,
    )


def _add_dialog() -> rx.Component:
    state = ApiKeysState
    return form_dialog(
        "Add API Key",
        "Names do not change what a key can do; they help you remember what it is for.",
        text_field(
            "Name (optional)",
            field_id="key_name",
            error=error_of(state, "name"),
            placeholder="Production backend",
            max_length=api_keys.NAME_MAX_LENGTH,
            auto_focus=True,
        ),
        open=state.adding,
        on_open_change=state.add_open_change,
        on_submit=state.create,
        button="Create key",
        busy=state.busy == "create",
        max_width="460px",
    )


def _budget_dialog() -> rx.Component:
    state = ApiKeysState
    return form_dialog(
        rx.text("Daily budget of ", state.budget_key_name),
        "This key's calls and holds past it are refused (429 key_budget_exceeded) until midnight UTC; the "
        "account's other keys keep working. Leave it empty for no budget of its own.",
        text_field(
            "Daily budget (USD, per UTC day)",
            field_id="daily_budget",
            error=error_of(state, "daily_budget"),
            placeholder="No budget",
            default_value=state.budget_value,
            key=state.budget_key,
            auto_focus=True,
        ),
        open=state.budget_key != "",
        on_open_change=state.budget_open_change,
        on_submit=state.save_budget,
        button="Save budget",
        busy=state.busy == "budget",
        max_width="460px",
    )


def _created_dialog() -> rx.Component:
    state = ApiKeysState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Your new API key"),
            rx.dialog.description(
                "Copy the key for “",
                state.created_name,
                "” now. This is the only time the full key is shown: "
                "it will not be shown again, but you can create a new key at any time.",
            ),
            rx.vstack(
                rx.hstack(
                    rx.code(state.created_key, id="new-api-key", word_break="break-all", size="3"),
                    rx.icon_button(
                        rx.icon("copy", size=16),
                        variant="soft",
                        aria_label="Copy the key",
                        on_click=[rx.set_clipboard(state.created_key), rx.toast.success("Copied to the clipboard.")],
                        id="copy-api-key",
                    ),
                    align="center",
                    spacing="3",
                    width="100%",
                ),
                rx.text(
                    "Send it as a Bearer token: Authorization: Bearer ld_…",
                    size="2",
                    color_scheme="gray",
                ),
                rx.flex(
                    rx.dialog.close(rx.button("Done", id="close-new-key")),
                    justify="end",
                    width="100%",
                ),
                spacing="4",
                margin_top="1em",
            ),
            max_width="560px",
        ),
        open=state.created_key != "",
        on_open_change=state.created_open_change,
    )


def _add_key_button() -> rx.Component:
    return rx.button(rx.icon("plus", size=16), "Add API Key", on_click=ApiKeysState.open_add, id="add-api-key")


@console_page(
    "/api-keys",
    "Keys for direct integration: your product sends usage to the metering API with them. A key's "
    "usage today and this month is counted in days of your account's timezone, as on Usage.",
    on_load=[ApiKeysState.load],
    action=_add_key_button,
)
def api_keys_page() -> list[rx.Component]:
    state = ApiKeysState
    return [
        form_messages(state),
        rows_or_empty(
            state.keys,
            data_table(
                "api-keys-table",
                ["Name", "Key", "Created", "Created by", "Last used", "Used today", "Used this month", "Daily budget"],
                state.keys,
                _row,
                right_aligned=("Used today", "Used this month"),
            ),
            "No API keys yet. Add one to send usage from your product.",
            icon="key-round",
            empty_id="api-keys-empty",
        ),
        rx.text(
            "The API is documented at ",
            rx.link("/api/v1/docs", href="/api/v1/docs", is_external=True),
            ".",
            size="2",
            color_scheme="gray",
        ),
        _add_dialog(),
        _budget_dialog(),
        _created_dialog(),
        confirm_dialog(state),
    ]
