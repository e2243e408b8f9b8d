"""Back office: the operator API's keys. A new key is shown once; deleting one refuses its next call."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_messages, state_form, text_field, with_submit
from app.components.tables import data_table, delete_icon_button, rows_or_empty
from app.pages.operator.shell import operator_page
from app.services.operator import keys
from app.state.events import event
from app.state.form import FormState, texts
from app.state.operator import operating


class OperatorKeysState(FormState, rx.State):
    rows: rx.Field[list[keys.OperatorKeyRow]] = rx.field(default_factory=list)
    # The full key, shown once after it is made; never sent again.
    created_key: rx.Field[str] = rx.field("")

    def _refresh(self) -> None:
        with operating(self) as (operator, session):
            self.rows = keys.key_rows(session, operator)

    @rx.event
    def load(self):
        self._clear_messages()
        self.created_key = ""
        with self._attempt():
            self._refresh()

    @rx.event
    def create(self, form: dict):
        self.created_key = ""
        with self._attempt("create"), operating(self) as (operator, session):
            (name,) = texts(form, "name")
            _, self.created_key = keys.create_key(session, operator, name)
            self._remount_form()
        self._after()

    @event
    def delete(self, key_id: str):
        with self._attempt("delete"), operating(self) as (operator, session):
            keys.delete_key(session, operator, key_id)
            self.notice = "Key deleted: calls with it are refused from now on."
        self._after()

    def _after(self) -> None:
        """The list as the action left it; a refusal stays shown."""
        if not self.error and not self.errors:
            notice = self.notice
            with self._attempt():
                self._refresh()
            self.notice = notice


def _row(row: keys.OperatorKeyRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.name),
        rx.table.cell(rx.code(row.prefix)),
        rx.table.cell(row.created),
        rx.table.cell(row.last_used),
        rx.table.cell(delete_icon_button(f"Delete {row.name}", OperatorKeysState.delete(row.id)), text_align="right"),
    )


@operator_page(
    "/operator/api-keys",
    "API keys",
    "Keys of the operator API (/api/operator/v1). A key is shown once, when it is made.",
    on_load=[OperatorKeysState.load],
)
def operator_api_keys_page() -> list[rx.Component]:
    state = OperatorKeysState
    return [
        state_form(
            state,
            with_submit(
                text_field("Name", field_id="name", required=True, error=error_of(state, "name")),
                "Add key",
                loading=state.busy == "create",
            ),
            on_submit=state.create,
        ),
        rx.cond(
            state.created_key != "",
            rx.callout.root(
                rx.callout.icon(rx.icon("key")),
                rx.callout.text(
                    "Copy the key now; it is not shown again: ", rx.code(state.created_key, id="created-key")
                ),
                color_scheme="green",
            ),
        ),
        form_messages(state),
        rows_or_empty(
            state.rows,
            data_table("operator-keys", ["Name", "Key", "Created", "Last used"], state.rows, _row),
            "No operator API keys yet.",
            empty_id="operator-keys-empty",
        ),
    ]
