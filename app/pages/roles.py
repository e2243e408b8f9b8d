"""Roles (seeds 001, 002): the built-in roles, read-only, and custom roles made of permissions.
The rules live in app/services/roles.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import reflex as rx

from app.components.dialogs import dialog_actions
from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table, pager
from app.db import transaction
from app.errors import DomainError
from app.services import roles
from app.services.permissions import PERMISSION_LABELS, Actor, Permission
from app.state.paging import PagedState
from app.state.session import SessionState, current_actor

PAGE_SIZE = 25
# Everyone sees Info (DESIGN.md §6): every role has it, so its box is always ticked.
ALWAYS = Permission.INFO_VIEW.value


@dataclass
class RoleRow:
    id: str = ""
    name: str = ""
    builtin: bool = False
    permission_labels: list[str] = field(default_factory=list)
    users: int = 0
    # The signed-in user may edit or delete it (custom, and within their own permissions).
    editable: bool = False


@dataclass
class PermissionOption:
    value: str = ""
    label: str = ""
    # The signed-in user holds it, so may grant it.
    held: bool = False


def _role_id(value: str) -> int:
    """A role id from the browser; anything else matches no role."""
    return int(value) if value.isdigit() else 0


def _labels(permissions) -> list[str]:
    return [PERMISSION_LABELS[p] for p in Permission if p in permissions]


class RolesState(PagedState, rx.State):
    rows: list[RoleRow] = []
    options: list[PermissionOption] = []
    error: str = ""
    notice: str = ""

    # The role editor: open for a new role (editing_id "") or an existing one.
    editor_open: bool = False
    editing_id: str = ""
    editor_name: str = ""
    selected: list[str] = []
    name_error: str = ""
    permissions_error: str = ""
    editor_error: str = ""
    saving: bool = False

    # The delete dialog ("" = closed).
    delete_id: str = ""
    delete_name: str = ""
    delete_blocker: str = ""
    delete_error: str = ""
    deleting: bool = False

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            result = roles.list_roles(session, actor, offset=(self.page_number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            if not result.rows and self.page_number > 1:
                self.page_number = max(1, -(-result.total // PAGE_SIZE))
                result = roles.list_roles(session, actor, offset=(self.page_number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        self.has_next = self.page_number * PAGE_SIZE < result.total
        self.rows = [
            RoleRow(
                id=str(info.role.id),
                name=info.role.name,
                builtin=info.role.builtin,
                permission_labels=_labels(info.permissions),
                users=info.users,
                editable=not info.role.builtin and roles.within(actor, info.permissions),
            )
            for info in result.rows
        ]
        self.options = [
            PermissionOption(value=p.value, label=PERMISSION_LABELS[p], held=actor.can(p)) for p in Permission
        ]

    def _refresh(self) -> None:
        try:
            self._reload(current_actor(self, Permission.ROLES_MANAGE))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def load(self):
        self.error = self.notice = ""
        self.page_number = 1
        self._close_editor()
        self._close_delete()
        self._refresh()

    # Create and edit

    def _close_editor(self) -> None:
        self.editor_open = self.saving = False
        self.editing_id = self.editor_name = self.name_error = self.permissions_error = self.editor_error = ""
        self.selected = []

    @rx.event
    def new_role(self):
        self.error = self.notice = ""
        self._close_editor()
        self.selected = [ALWAYS]
        self.editor_open = True

    @rx.event
    def edit_role(self, role_id: str):
        self.error = self.notice = ""
        self._close_editor()
        try:
            actor = current_actor(self, Permission.ROLES_MANAGE)
            with transaction() as session:
                info = roles.get_role(session, actor, _role_id(role_id))
        except DomainError as exc:
            self.error = exc.message
            return
        self.editing_id = str(info.role.id)
        self.editor_name = info.role.name
        self.selected = [p.value for p in Permission if p in info.permissions]
        self.editor_open = True

    @rx.event
    def editor_open_change(self, is_open: bool):
        if not is_open and not self.saving:
            self._close_editor()

    @rx.event
    def toggle_permission(self, value: str, checked: bool):
        self.permissions_error = ""
        if value == ALWAYS:
            return
        chosen = set(self.selected) - {value}
        if checked:
            chosen.add(value)
        self.selected = [p.value for p in Permission if p.value in chosen]

    @rx.event
    def save_role(self, form_data: dict):
        self.name_error = self.permissions_error = self.editor_error = ""
        self.saving = True
        yield
        name = str(form_data.get("name", ""))
        try:
            actor = current_actor(self, Permission.ROLES_MANAGE)
            with transaction() as session:
                if self.editing_id:
                    role = roles.update_role(
                        session, actor, _role_id(self.editing_id), name=name, permissions=self.selected
                    )
                else:
                    role = roles.create_role(session, actor, name=name, permissions=self.selected)
                saved = role.name
            self._reload(actor)
        except DomainError as exc:
            self.saving = False
            errors = {"name": "name_error", "permissions": "permissions_error"}
            setattr(self, errors.get(exc.field or "", "editor_error"), exc.message)
            return
        edited = bool(self.editing_id)
        self._close_editor()
        self.notice = (
            f"Role {saved} saved. Its users get the new permissions on their next action."
            if edited
            else f"Role {saved} created. Give it to users on the Team page."
        )
        # The editor may hold this role: refresh the sidebar's view of their permissions.
        yield SessionState.load_console

    # Delete

    def _close_delete(self) -> None:
        self.delete_id = self.delete_name = self.delete_blocker = self.delete_error = ""
        self.deleting = False

    @rx.event
    def ask_delete(self, role_id: str):
        self.error = self.notice = ""
        self._close_delete()
        row = next((r for r in self.rows if r.id == role_id), None)
        if row is None:
            return
        try:
            actor = current_actor(self, Permission.ROLES_MANAGE)
            with transaction() as session:
                self.delete_blocker = roles.deletion_blocker(session, actor, _role_id(role_id))
        except DomainError as exc:
            self.error = exc.message
            return
        self.delete_id, self.delete_name = row.id, row.name

    @rx.event
    def delete_open_change(self, is_open: bool):
        if not is_open and not self.deleting:
            self._close_delete()

    @rx.event
    def confirm_delete(self):
        self.delete_error = ""
        self.deleting = True
        yield
        try:
            actor = current_actor(self, Permission.ROLES_MANAGE)
            with transaction() as session:
                name = roles.delete_role(session, actor, _role_id(self.delete_id))
            self._reload(actor)
        except DomainError as exc:
            self.deleting = False
            self.delete_error = exc.message
            return
        self._close_delete()
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


def _roles_table() -> rx.Component:
    return data_table(
        "roles-table",
        ["Role", "Type", "Permissions", "Users"],
        RolesState.rows,
        _row,
    )


def _permission_box(option: PermissionOption) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            option.label,
            checked=RolesState.selected.contains(option.value),
            disabled=~option.held | (option.value == ALWAYS),
            on_change=lambda checked: RolesState.toggle_permission(option.value, checked),
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
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(state.editing_id != "", "Edit role", "New role")),
            rx.dialog.description(
                "A role is a set of permissions. You can grant only permissions you hold yourself.",
                size="2",
                margin_bottom="1em",
            ),
            rx.form(
                rx.vstack(
                    form_error(state.editor_error),
                    text_field(
                        "Role name",
                        field_id="role_name",
                        name="name",
                        default_value=state.editor_name,
                        error=state.name_error,
                        max_length=100,
                    ),
                    rx.el.fieldset(
                        rx.el.legend("Permissions", class_name="ld-label"),
                        rx.vstack(rx.foreach(state.options, _permission_box), spacing="2", margin_top="0.5em"),
                        style={"border": "none", "padding": "0", "margin": "0"},
                    ),
                    rx.cond(
                        state.permissions_error != "",
                        rx.text(
                            state.permissions_error, size="2", color_scheme="red", id="permissions-error", role="alert"
                        ),
                    ),
                    rx.flex(
                        rx.dialog.close(
                            rx.button(
                                "Cancel", type="button", variant="soft", color_scheme="gray", disabled=state.saving
                            )
                        ),
                        rx.button("Save role", type="submit", loading=state.saving),
                        spacing="3",
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    align="stretch",
                ),
                on_submit=state.save_role,
            ),
            max_width="560px",
        ),
        open=state.editor_open,
        on_open_change=state.editor_open_change,
    )


def _delete_dialog() -> rx.Component:
    state = RolesState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete role"),
            rx.cond(
                state.delete_blocker != "",
                rx.vstack(
                    rx.alert_dialog.description("The role ", state.delete_name, " cannot be deleted yet."),
                    rx.callout(state.delete_blocker, icon="triangle_alert", color_scheme="orange", id="delete-blocker"),
                    rx.flex(
                        rx.alert_dialog.cancel(rx.button("Close", variant="soft", color_scheme="gray")),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
                rx.vstack(
                    rx.alert_dialog.description("Delete the role ", state.delete_name, "? This cannot be undone."),
                    rx.cond(
                        state.delete_error != "",
                        rx.text(state.delete_error, color_scheme="red", size="2", role="alert", id="delete-error"),
                    ),
                    dialog_actions(
                        rx.button(
                            "Delete role", color_scheme="red", loading=state.deleting, on_click=state.confirm_delete
                        ),
                        state.deleting,
                    ),
                    spacing="3",
                ),
            ),
            max_width="480px",
        ),
        open=state.delete_id != "",
        on_open_change=state.delete_open_change,
    )


@console_page(
    route="/roles",
    title="Roles",
    permission=Permission.ROLES_MANAGE,
    section="Administration",
    nav_label="Roles",
    order=50,
    on_load=[RolesState.load],
)
def roles_page() -> rx.Component:
    state = RolesState
    return rx.vstack(
        rx.hstack(
            page_heading("Roles", "Built-in roles, and your own roles made of permissions."),
            rx.spacer(),
            rx.button(rx.icon("plus", size=16), "New role", on_click=state.new_role, id="new-role"),
            align="start",
            width="100%",
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(
            state.rows.length() > 0,
            _roles_table(),
            rx.callout("No roles on this page.", icon="info", id="roles-empty"),
        ),
        pager(state),
        _editor_dialog(),
        _delete_dialog(),
        spacing="4",
        align="stretch",
    )
