"""Roles (seeds 001, 002): the built-in roles, read-only, and custom roles made of permissions.
The rules live in app/services/roles.py."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import confirm_dialog, form_dialog
from app.components.forms import error_of, field_error, form_error, form_messages, text_field
from app.components.layout import console_page
from app.components.tables import data_table, pager, rows_or_empty
from app.services import roles
from app.services.permissions import Permission
from app.services.roles import PermissionOption, RoleRow
from app.state.confirm import ConfirmState
from app.state.events import event
from app.state.form import FormState
from app.state.paging import PagedState
from app.state.session import SessionState, acting

# Everyone sees Info (DESIGN.md §6): every role has it, so its box is always ticked.
ALWAYS = Permission.INFO_VIEW.value


def _role_id(value: str) -> int:
    """A role id from the browser; anything else matches no role."""
    return int(value) if value.isdigit() else 0


class RolesState(FormState, ConfirmState, PagedState, rx.State):
    rows: rx.Field[list[RoleRow]] = rx.field(default_factory=list)
    options: rx.Field[list[PermissionOption]] = rx.field(default_factory=list)

    # The role editor: open for a new role (editing_id "") or an existing one; its permission
    # boxes start from `selected` and are read from the submitted form.
    editor_open: rx.Field[bool] = rx.field(False)
    editing_id: rx.Field[str] = rx.field("")
    editor_name: rx.Field[str] = rx.field("")
    selected: rx.Field[list[str]] = rx.field(default_factory=list)
    # Why the role asked to be deleted cannot be ("" when it can).
    delete_blocker: rx.Field[str] = rx.field("")

    def _show(self, view: roles.RolesView) -> None:
        self.rows, self.page_number, self.has_next, self.options = (
            view.rows,
            view.page_number,
            view.has_next,
            view.options,
        )

    def _refresh(self) -> None:
        with self._attempt(), acting(self, Permission.ROLES_MANAGE) as (actor, session):
            self._show(roles.roles_view(session, actor, self.page_number))

    @rx.event
    def load(self):
        self.page_number = 1
        self._close_editor()
        self._close_confirm()
        self._refresh()

    def _close_editor(self) -> None:
        self.editor_open, self.editing_id, self.editor_name, self.selected = False, "", "", []
        self.errors = {}

    @rx.event
    def new_role(self):
        self._clear_messages()
        self._close_editor()
        self.selected = [ALWAYS]
        self.editor_open = True

    @event
    def edit_role(self, role_id: str):
        self._close_editor()
        with self._attempt(), acting(self, Permission.ROLES_MANAGE) as (actor, session):
            row = roles.role_row(session, actor, _role_id(role_id))
            self.editing_id, self.editor_name, self.selected = row.id, row.name, row.permissions
            self.editor_open = True

    @rx.event
    def editor_open_change(self, is_open: bool):
        if not is_open and self.busy != "save":
            self._close_editor()

    @rx.event
    def save_role(self, form_data: dict):
        name = str(form_data.get("name", ""))
        chosen = [p.value for p in Permission if form_data.get(f"permission_{p.value}") in (True, "on")]
        with self._attempt("save", field="editor"):
            yield
            with acting(self, Permission.ROLES_MANAGE) as (actor, session):
                if self.editing_id:
                    role_id = _role_id(self.editing_id)
                    saved = roles.update_role(session, actor, role_id, name=name, permissions=chosen).name
                else:
                    saved = roles.create_role(session, actor, name=name, permissions=chosen).name
                self._show(roles.roles_view(session, actor, self.page_number))
            edited = bool(self.editing_id)
            self._close_editor()
            self.notice = (
                f"Role {saved} saved. Its users get the new permissions on their next action."
                if edited
                else f"Role {saved} created. Give it to users on the Team page."
            )
            # The editor may hold this role: refresh the sidebar's view of their permissions.
            yield SessionState.load_console

    @event
    def ask_delete(self, role_id: str):
        row = next((r for r in self.rows if r.id == role_id), None)
        if row is None:
            return
        with self._attempt(), acting(self, Permission.ROLES_MANAGE) as (actor, session):
            blocker = roles.deletion_blocker(session, actor, _role_id(role_id))
            question = f"Delete the role {row.name}? This cannot be undone."
            cannot = f"The role {row.name} cannot be deleted yet."
            self._ask(
                "delete",
                target=row.id,
                title="Delete role",
                lines=[cannot if blocker else question],
                button="Delete role",
            )
            self.delete_blocker = blocker

    @rx.event
    def confirm(self):
        with self._confirming():
            yield
            with acting(self, Permission.ROLES_MANAGE) as (actor, session):
                name = roles.delete_role(session, actor, _role_id(self.confirm_target))
                self._show(roles.roles_view(session, actor, self.page_number))
            self.notice = f"Role {name} deleted."


def _row(row: RoleRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row.name, weight="medium")),
        rx.table.cell(
            rx.cond(
                row.builtin,
                rx.badge("Built-in", variant="soft", color_scheme="gray"),
                rx.badge("Custom", variant="soft"),
            )
        ),
        rx.table.cell(
            rx.flex(
                rx.foreach(row.permission_labels, lambda label: rx.badge(label, variant="outline", size="1")),
                wrap="wrap",
                spacing="1",
            ),
            max_width="420px",
        ),
        rx.table.cell(row.users),
        rx.table.cell(
            rx.cond(
                row.editable,
                rx.hstack(
                    rx.button(
                        "Edit",
                        size="1",
                        variant="soft",
                        aria_label="Edit role " + row.name,
                        on_click=RolesState.edit_role(row.id),
                    ),
                    rx.button(
                        "Delete",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        aria_label="Delete role " + row.name,
                        on_click=RolesState.ask_delete(row.id),
                    ),
                    spacing="2",
                    justify="end",
                ),
                rx.cond(row.builtin, rx.text("Read-only", size="1", color_scheme="gray")),
            ),
            text_align="right",
        ),
        data_role=row.name,
    )


def _permission_box(option: PermissionOption) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            option.label,
            name="permission_" + option.value,
            default_checked=RolesState.selected.contains(option.value),
            disabled=~option.held | (option.value == ALWAYS),
            id="permission-" + option.value,
        ),
        rx.code(option.value, variant="ghost", size="1", color_scheme="gray"),
        rx.cond(
            ~option.held,
            rx.text("not in your role", size="1", color_scheme="gray"),
            rx.cond(option.value == ALWAYS, rx.text("everyone has it", size="1", color_scheme="gray")),
        ),
        align="center",
        spacing="2",
    )


def _editor_dialog() -> rx.Component:
    state = RolesState
    return form_dialog(
        rx.cond(state.editing_id != "", "Edit role", "New role"),
        "A role is a set of permissions. You can grant only permissions you hold yourself.",
        form_error(error_of(state, "editor")),
        text_field(
            "Role name",
            field_id="role_name",
            name="name",
            default_value=state.editor_name,
            error=error_of(state, "name"),
            max_length=100,
        ),
        rx.el.fieldset(
            rx.el.legend("Permissions", class_name="ld-label"),
            rx.vstack(rx.foreach(state.options, _permission_box), spacing="2", margin_top="0.5em"),
            style={"border": "none", "padding": "0", "margin": "0"},
        ),
        field_error(error_of(state, "permissions"), "permissions-error"),
        open=state.editor_open,
        on_open_change=state.editor_open_change,
        on_submit=state.save_role,
        button="Save role",
        busy=state.busy == "save",
        max_width="560px",
    )


def _new_role_button() -> rx.Component:
    return rx.button(rx.icon("plus", size=16), "New role", on_click=RolesState.new_role, id="new-role")


@console_page(
    "/roles",
    "Built-in roles, and your own roles made of permissions.",
    on_load=[RolesState.load],
    action=_new_role_button,
)
def roles_page() -> list[rx.Component]:
    state = RolesState
    return [
        form_messages(state),
        rows_or_empty(
            state.rows,
            data_table("roles-table", ["Role", "Type", "Permissions", "Users"], state.rows, _row),
            "No roles on this page.",
            empty_id="roles-empty",
        ),
        pager(state),
        _editor_dialog(),
        confirm_dialog(state, blocker=state.delete_blocker, blocker_id="delete-blocker"),
    ]
