"""API Keys (seeds 000, 001, 002): add a key with an optional name, see the full key once, list
the keys, and delete one after confirmation; the metering API refuses it on the next call."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.dialogs import dialog_actions
from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError
from app.services import api_keys
from app.services.company import account_timezone
from app.services.info import user_names
from app.services.permissions import Actor, Permission
from app.services.timefmt import format_datetime
from app.state.session import current_actor

# Shown and stored when the optional name is left empty.
UNNAMED = "Unnamed key"


@dataclass
class KeyRow:
    id: str = ""
    name: str = ""
    prefix: str = ""
    created: str = ""
    created_by: str = ""
    last_used: str = ""


class ApiKeysState(rx.State):
    keys: list[KeyRow] = []
    error: str = ""
    notice: str = ""
    # The "Add API Key" dialog.
    adding: bool = False
    new_name: str = ""
    name_error: str = ""
    creating: bool = False
    # The one-time display of a new key; cleared when its dialog closes.
    created_key: str = ""
    created_name: str = ""
    # The delete confirmation ("" = closed).
    delete_id: str = ""
    delete_label: str = ""
    delete_error: str = ""
    deleting: bool = False

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            rows = api_keys.list_keys(session, actor)
            timezone = account_timezone(session, actor)
            names = user_names(session, actor, {row.created_by_user_id for row in rows if row.created_by_user_id})
        self.keys = [
            KeyRow(
                id=row.public_id,
                name=row.name or UNNAMED,
                prefix=f"{row.prefix}…",
                created=format_datetime(row.created_at, timezone),
                created_by=names.get(row.created_by_user_id, "—"),
                last_used=format_datetime(row.last_used_at, timezone) if row.last_used_at else "Never",
            )
            for row in rows
        ]

    @rx.event
    def load(self):
        self.error = self.notice = ""
        self.adding = self.creating = self.deleting = False
        self.created_key = self.created_name = self.delete_id = self.delete_label = self.delete_error = ""
        try:
            self._reload(current_actor(self, Permission.API_KEYS_MANAGE))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def open_add(self):
        self.error = self.notice = self.name_error = self.new_name = ""
        self.adding = True

    @rx.event
    def add_open_change(self, is_open: bool):
        if not is_open and not self.creating:
            self.adding = False

    @rx.event
    def set_new_name(self, value: str):
        self.new_name = value

    @rx.event
    def create(self, _form_data: dict):
        self.name_error = ""
        self.creating = True
        yield
        try:
            actor = current_actor(self, Permission.API_KEYS_MANAGE)
            with transaction() as session:
                key, full_key = api_keys.create_key(session, actor, self.new_name.strip() or UNNAMED)
                name = key.name
            self._reload(actor)
        except DomainError as exc:
            self.creating = False
            if exc.field == "name":
                self.name_error = exc.message
            else:
                self.adding = False
                self.error = exc.message
            return
        self.creating = self.adding = False
        self.created_key, self.created_name = full_key, name

    @rx.event
    def created_open_change(self, is_open: bool):
        if not is_open:
            self.created_key = self.created_name = ""

    @rx.event
    def ask_delete(self, key_id: str):
        self.error = self.notice = self.delete_error = ""
        row = next((k for k in self.keys if k.id == key_id), None)
        if row is not None:
            self.delete_id, self.delete_label = row.id, f"{row.name} ({row.prefix})"

    @rx.event
    def delete_open_change(self, is_open: bool):
        if not is_open and not self.deleting:
            self.delete_id = self.delete_label = self.delete_error = ""

    @rx.event
    def confirm_delete(self):
        self.delete_error = ""
        self.deleting = True
        yield
        label = self.delete_label
        try:
            actor = current_actor(self, Permission.API_KEYS_MANAGE)
            with transaction() as session:
                api_keys.delete_key(session, actor, self.delete_id)
            self._reload(actor)
        except DomainError as exc:
            self.deleting = False
            self.delete_error = exc.message
            return
        self.deleting = False
        self.delete_id = self.delete_label = ""
        self.notice = f"{label} is deleted. The API refuses it from now on."


def _row(key: KeyRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(key.name, weight="medium")),
        rx.table.cell(rx.code(key.prefix, variant="ghost")),
        rx.table.cell(key.created),
        rx.table.cell(key.created_by),
        rx.table.cell(key.last_used),
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


def _keys_table() -> rx.Component:
    return data_table(
        "api-keys-table",
        ["Name", "Key", "Created", "Created by", "Last used"],
        ApiKeysState.keys,
        _row,
    )


def _add_dialog() -> rx.Component:
    state = ApiKeysState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Add API Key"),
            rx.dialog.description("Names do not change what a key can do; they help you remember what it is for."),
            rx.form(
                rx.vstack(
                    text_field(
                        "Name (optional)",
                        field_id="key_name",
                        value=state.new_name,
                        on_change=state.set_new_name,
                        error=state.name_error,
                        placeholder="Production backend",
                        max_length=api_keys.NAME_MAX_LENGTH,
                        auto_focus=True,
                    ),
                    rx.flex(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        rx.button("Create key", type="submit", loading=state.creating),
                        spacing="3",
                        justify="end",
                        width="100%",
                    ),
                    spacing="4",
                    margin_top="1em",
                ),
                on_submit=state.create,
                reset_on_submit=False,
            ),
            max_width="460px",
        ),
        open=state.adding,
        on_open_change=state.add_open_change,
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


def _delete_dialog() -> rx.Component:
    state = ApiKeysState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete API Key"),
            rx.alert_dialog.description(
                "Delete ",
                state.delete_label,
                "? It stops working at once: the API rejects every further request made with it. "
                "This cannot be undone.",
            ),
            rx.cond(
                state.delete_error != "",
                rx.text(state.delete_error, color_scheme="red", size="2", role="alert", id="delete-error"),
            ),
            dialog_actions(
                rx.button("Delete API Key", color_scheme="red", loading=state.deleting, on_click=state.confirm_delete),
                state.deleting,
                margin_top="1em",
            ),
            max_width="480px",
        ),
        open=state.delete_id != "",
        on_open_change=state.delete_open_change,
    )


@console_page(
    route="/api-keys",
    title="API Keys",
    permission=Permission.API_KEYS_MANAGE,
    section="Administration",
    nav_label="API Keys",
    order=40,
    on_load=[ApiKeysState.load],
)
def api_keys_page() -> rx.Component:
    state = ApiKeysState
    return rx.vstack(
        rx.hstack(
            page_heading(
                "API Keys", "Keys for direct integration: your product sends usage to the metering API with them."
            ),
            rx.spacer(),
            rx.button(rx.icon("plus", size=16), "Add API Key", on_click=state.open_add, id="add-api-key"),
            align="start",
            width="100%",
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(
            state.keys.length() > 0,
            _keys_table(),
            rx.callout(
                "No API keys yet. Add one to send usage from your product.",
                icon="key-round",
                id="api-keys-empty",
            ),
        ),
        rx.text(
            "The API is documented at ",
            rx.link("/api/v1/docs", href="/api/v1/docs", is_external=True),
            ".",
            size="2",
            color_scheme="gray",
        ),
        _add_dialog(),
        _created_dialog(),
        _delete_dialog(),
        spacing="4",
        align="stretch",
    )
