"""Team (seeds 000, 001, 002): invite users, resend or revoke invitations, block, unblock, remove
users and change their roles. The rules live in app/services/team.py."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.dialogs import dialog_actions
from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table, pager
from app.config import get_settings
from app.db import transaction
from app.errors import DomainError
from app.models import Account
from app.services import product_catalogue as catalogue
from app.services import team
from app.services.permissions import Actor, Permission
from app.services.product_catalogue import active_codes
from app.services.roles import role_permissions, within
from app.services.timefmt import format_date, zone
from app.state.paging import PagedState
from app.state.session import current_actor

PAGE_SIZE = 25
STATUS_LABELS = {"active": "Active", "invited": "Invited", "blocked": "Blocked"}
# Each confirmed action's dialog title, question ({name} = the user) and button.
CONFIRMATIONS = {
    "block": (
        "Block user",
        "Block {name}? They are signed out at once and cannot sign in until unblocked.",
        "Block",
    ),
    "remove": (
        "Remove user",
        "Remove {name} from the team? This cannot be undone; you can invite them again later.",
        "Remove",
    ),
    "revoke": (
        "Revoke invitation",
        "Revoke the invitation of {name}? The link in their email stops working.",
        "Revoke invitation",
    ),
}


@dataclass
class MemberRow:
    id: str = ""
    name: str = ""
    email: str = ""
    role_id: str = ""
    role_name: str = ""
    status: str = ""
    status_label: str = ""
    added: str = ""
    is_self: bool = False
    manageable: bool = False
    products: str = ""


@dataclass
class RoleOption:
    id: str = ""
    name: str = ""


def _role_id(value: str) -> int | None:
    return int(value) if value.isdigit() else None


class TeamState(PagedState, rx.State):
    rows: list[MemberRow] = []
    role_options: list[RoleOption] = []
    # [code, name] of the account's products, offered in the invitation.
    product_options: list[list[str]] = []
    seats_text: str = ""
    seats_full: bool = False
    error: str = ""
    notice: str = ""
    busy_id: str = ""

    invite_open: bool = False
    invite_role: str = ""
    email_error: str = ""
    full_name_error: str = ""
    role_error: str = ""
    products_error: str = ""
    invite_error: str = ""
    inviting: bool = False

    # The user the role dialog is about ("" = closed).
    role_user_id: str = ""
    role_user_name: str = ""
    new_role: str = ""
    new_role_error: str = ""
    saving_role: bool = False

    # The confirmation dialog: action in CONFIRMATIONS and its user ("" = closed).
    confirm_action: str = ""
    confirm_user_id: str = ""
    confirm_user_name: str = ""
    confirm_error: str = ""
    confirming: bool = False

    @rx.var
    def confirm_title(self) -> str:
        return CONFIRMATIONS.get(self.confirm_action, ("", "", ""))[0]

    @rx.var
    def confirm_message(self) -> str:
        return CONFIRMATIONS.get(self.confirm_action, ("", "", ""))[1].format(name=self.confirm_user_name)

    @rx.var
    def confirm_button(self) -> str:
        return CONFIRMATIONS.get(self.confirm_action, ("", "", ""))[2]

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            timezone = session.get(Account, actor.account_id).timezone
            result = team.list_members(session, actor, offset=(self.page_number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            if not result.rows and self.page_number > 1:
                self.page_number = max(1, -(-result.total // PAGE_SIZE))
                result = team.list_members(session, actor, offset=(self.page_number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            usage = team.seats(session, actor)
            options = team.assignable_roles(session, actor)
            products = {m.user.public_id: catalogue.names(team.product_access(session, m.user)) for m in result.rows}
            available = active_codes(session, actor.account_id)
        self.has_next = self.page_number * PAGE_SIZE < result.total
        self.rows = [
            MemberRow(
                id=m.user.public_id,
                name=m.user.full_name or m.user.email,
                email=m.user.email,
                role_id=str(m.role.id),
                role_name=m.role.name,
                status=m.user.status,
                status_label=STATUS_LABELS.get(m.user.status, m.user.status),
                added=format_date(m.user.created_at.astimezone(zone(timezone)).date()),
                is_self=m.user.id == actor.user_id,
                manageable=m.user.id != actor.user_id and within(actor, role_permissions(m.role)),
                products=", ".join(products[m.user.public_id]),
            )
            for m in result.rows
        ]
        self.product_options = [[code, name] for code, name in zip(available, catalogue.names(available), strict=True)]
        self.role_options = [RoleOption(id=str(r.id), name=r.name) for r in options]
        self.seats_full = not usage.free
        self.seats_text = (
            f"{usage.used} of {usage.limit} seats used" if usage.limit is not None else f"{usage.used} seats used"
        )

    def _refresh(self) -> None:
        try:
            self._reload(current_actor(self, Permission.TEAM_MANAGE))
        except DomainError as exc:
            self.error = exc.message

    def _row(self, user_id: str) -> MemberRow | None:
        return next((r for r in self.rows if r.id == user_id), None)

    @rx.event
    def load(self):
        self.error = self.notice = self.busy_id = ""
        self.page_number = 1
        self._close_invite()
        self._close_role()
        self._close_confirm()
        self._refresh()

    # Invitations

    def _close_invite(self) -> None:
        self.invite_open = self.inviting = False
        self.email_error = self.full_name_error = self.role_error = self.invite_error = self.products_error = ""

    @rx.event
    def open_invite(self):
        self.error = self.notice = ""
        self._close_invite()
        member = next((o.id for o in self.role_options if o.name == "Member"), "")
        self.invite_role = member or (self.role_options[0].id if self.role_options else "")
        self.invite_open = True

    @rx.event
    def invite_open_change(self, is_open: bool):
        if not is_open and not self.inviting:
            self._close_invite()

    @rx.event
    def set_invite_role(self, role_id: str):
        self.invite_role = role_id
        self.role_error = ""

    @rx.event
    def submit_invite(self, form_data: dict):
        self.email_error = self.full_name_error = self.role_error = self.invite_error = self.products_error = ""
        self.inviting = True
        yield
        try:
            actor = current_actor(self, Permission.TEAM_MANAGE)
            with transaction() as session:
                user = team.invite(
                    session,
                    actor,
                    email=str(form_data.get("email", "")),
                    full_name=str(form_data.get("full_name", "")),
                    role_id=_role_id(self.invite_role),
                    base_url=get_settings().public_url,
                    products=[
                        code for code, _ in self.product_options if form_data.get(f"product_{code}") in (True, "on")
                    ],
                )
                email = user.email
            self._reload(actor)
        except DomainError as exc:
            self.inviting = False
            errors = {
                "email": "email_error",
                "full_name": "full_name_error",
                "role": "role_error",
                "products": "products_error",
            }
            setattr(self, errors.get(exc.field or "", "invite_error"), exc.message)
            return
        self._close_invite()
        self.notice = f"Invitation sent to {email}. The link in it is valid for 7 days."

    @rx.event
    def resend(self, user_id: str):
        self.error = self.notice = ""
        self.busy_id = user_id
        yield
        try:
            actor = current_actor(self, Permission.TEAM_MANAGE)
            with transaction() as session:
                email = team.resend_invitation(session, actor, user_id, base_url=get_settings().public_url).email
            self._reload(actor)
            self.notice = f"A new invitation was sent to {email}. Earlier links no longer work."
        except DomainError as exc:
            self.error = exc.message
        self.busy_id = ""

    @rx.event
    def unblock(self, user_id: str):
        self.error = self.notice = ""
        self.busy_id = user_id
        yield
        try:
            actor = current_actor(self, Permission.TEAM_MANAGE)
            with transaction() as session:
                email = team.unblock(session, actor, user_id).email
            self._reload(actor)
            self.notice = f"{email} is unblocked and can sign in again."
        except DomainError as exc:
            self.error = exc.message
        self.busy_id = ""

    # Role changes

    def _close_role(self) -> None:
        self.role_user_id = self.role_user_name = self.new_role = self.new_role_error = ""
        self.saving_role = False

    @rx.event
    def ask_change_role(self, user_id: str):
        self.error = self.notice = ""
        self._close_role()
        row = self._row(user_id)
        if row is None:
            return
        self.role_user_id, self.role_user_name, self.new_role = row.id, row.name, row.role_id

    @rx.event
    def role_open_change(self, is_open: bool):
        if not is_open and not self.saving_role:
            self._close_role()

    @rx.event
    def set_new_role(self, role_id: str):
        self.new_role = role_id
        self.new_role_error = ""

    @rx.event
    def save_role(self):
        self.new_role_error = ""
        self.saving_role = True
        yield
        try:
            actor = current_actor(self, Permission.TEAM_MANAGE)
            with transaction() as session:
                user = team.change_role(session, actor, self.role_user_id, _role_id(self.new_role))
                email = user.email
            self._reload(actor)
        except DomainError as exc:
            self.saving_role = False
            self.new_role_error = exc.message
            return
        name = next((o.name for o in self.role_options if o.id == self.new_role), "")
        self._close_role()
        self.notice = f"{email} now has the role {name}. It applies from their next action."

    # Block, remove, revoke: after confirmation

    def _close_confirm(self) -> None:
        self.confirm_action = self.confirm_user_id = self.confirm_user_name = self.confirm_error = ""
        self.confirming = False

    @rx.event
    def ask_confirm(self, action: str, user_id: str):
        self.error = self.notice = ""
        self._close_confirm()
        row = self._row(user_id)
        if row is None or action not in CONFIRMATIONS:
            return
        self.confirm_action, self.confirm_user_id, self.confirm_user_name = action, row.id, row.name

    @rx.event
    def confirm_open_change(self, is_open: bool):
        if not is_open and not self.confirming:
            self._close_confirm()

    @rx.event
    def confirm(self):
        self.confirm_error = ""
        self.confirming = True
        yield
        action, user_id = self.confirm_action, self.confirm_user_id
        try:
            actor = current_actor(self, Permission.TEAM_MANAGE)
            with transaction() as session:
                if action == "block":
                    email = team.block(session, actor, user_id).email
                    message = f"{email} is blocked. Their sessions have ended."
                elif action == "remove":
                    message = f"{team.remove(session, actor, user_id)} was removed from the team."
                else:
                    message = f"The invitation to {team.revoke_invitation(session, actor, user_id)} was revoked."
            self._reload(actor)
        except DomainError as exc:
            self.confirming = False
            self.confirm_error = exc.message
            return
        self._close_confirm()
        self.notice = message


def _status_badge(row: MemberRow) -> rx.Component:
    return rx.badge(
        row.status_label,
        variant="soft",
        color_scheme=rx.match(row.status, ("active", "green"), ("invited", "blue"), "red"),
    )


def _actions(row: MemberRow) -> rx.Component:
    return rx.cond(
        row.manageable,
        rx.menu.root(
            rx.menu.trigger(
                rx.button(
                    "Actions",
                    rx.icon("chevron-down", size=14),
                    variant="soft",
                    size="1",
                    loading=TeamState.busy_id == row.id,
                    aria_label="Actions for " + row.email,
                )
            ),
            rx.menu.content(
                rx.cond(
                    row.status == "invited",
                    rx.fragment(
                        rx.menu.item("Resend invitation", on_click=TeamState.resend(row.id)),
                        rx.menu.item(
                            "Revoke invitation", color_scheme="red", on_click=TeamState.ask_confirm("revoke", row.id)
                        ),
                    ),
                ),
                rx.menu.item("Change role", on_click=TeamState.ask_change_role(row.id)),
                rx.cond(
                    row.status == "active",
                    rx.menu.item("Block", color_scheme="red", on_click=TeamState.ask_confirm("block", row.id)),
                ),
                rx.cond(row.status == "blocked", rx.menu.item("Unblock", on_click=TeamState.unblock(row.id))),
                rx.cond(
                    row.status != "invited",
                    rx.menu.item("Remove", color_scheme="red", on_click=TeamState.ask_confirm("remove", row.id)),
                ),
            ),
        ),
        rx.cond(row.is_self, rx.text("You", size="2", color_scheme="gray")),
    )


def _row(row: MemberRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(row.name, weight="medium"),
                rx.text(row.email, size="1", color_scheme="gray"),
                spacing="0",
            )
        ),
        rx.table.cell(row.role_name),
        rx.table.cell(row.products, max_width="220px"),
        rx.table.cell(_status_badge(row)),
        rx.table.cell(row.added),
        rx.table.cell(_actions(row), text_align="right"),
        data_user=row.email,
    )


def _members_table() -> rx.Component:
    return data_table(
        "team-table",
        ["User", "Role", "Products", "Status", "Added"],
        TeamState.rows,
        _row,
    )


def _role_select(field_id: str, value: rx.Var, on_change, error: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.el.label("Role", html_for=field_id, class_name="ld-label"),
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(rx.foreach(TeamState.role_options, lambda o: rx.select.item(o.name, value=o.id))),
            value=value,
            on_change=on_change,
        ),
        rx.cond(error != "", rx.text(error, size="2", color_scheme="red", id=f"{field_id}-error", role="alert")),
        spacing="1",
        width="100%",
        align="stretch",
    )


def _dialog_buttons(cancel_disabled: rx.Var, *action: rx.Component) -> rx.Component:
    return rx.flex(
        rx.dialog.close(
            rx.button("Cancel", type="button", variant="soft", color_scheme="gray", disabled=cancel_disabled)
        ),
        *action,
        spacing="3",
        justify="end",
        width="100%",
    )


def _product_choice() -> rx.Component:
    state = TeamState
    return rx.vstack(
        rx.text("Products", class_name="ld-label", id="invite-products-label"),
        rx.vstack(
            rx.foreach(
                state.product_options,
                lambda option: rx.el.label(
                    rx.hstack(
                        rx.checkbox(name="product_" + option[0], id="product_" + option[0], default_checked=True),
                        rx.text(option[1], size="2"),
                        align="center",
                        spacing="2",
                    )
                ),
            ),
            spacing="1",
            role="group",
            aria_labelledby="invite-products-label",
        ),
        rx.cond(
            state.products_error != "",
            rx.text(state.products_error, size="2", color_scheme="red", role="alert", id="invite-products-error"),
        ),
        spacing="1",
    )


def _invite_dialog() -> rx.Component:
    state = TeamState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Invite user"),
            rx.dialog.description(
                "We email them a link to choose a password. The link is valid for 7 days.",
                size="2",
                margin_bottom="1em",
            ),
            rx.form(
                rx.vstack(
                    form_error(state.invite_error),
                    text_field("Email", field_id="invite_email", name="email", type="email", error=state.email_error),
                    text_field("Full name", field_id="invite_full_name", name="full_name", error=state.full_name_error),
                    _role_select("invite_role", state.invite_role, state.set_invite_role, state.role_error),
                    _product_choice(),
                    _dialog_buttons(
                        state.inviting,
                        rx.button("Send invitation", type="submit", loading=state.inviting),
                    ),
                    spacing="3",
                    align="stretch",
                ),
                on_submit=state.submit_invite,
                # The server's message, next to the field, rather than the browser's bubble.
                no_validate=True,
            ),
            max_width="480px",
        ),
        open=state.invite_open,
        on_open_change=state.invite_open_change,
    )


def _role_dialog() -> rx.Component:
    state = TeamState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Change role"),
            rx.dialog.description(
                "Choose the role of ",
                state.role_user_name,
                ". It applies from their next action.",
                size="2",
                margin_bottom="1em",
            ),
            rx.vstack(
                _role_select("new_role", state.new_role, state.set_new_role, state.new_role_error),
                _dialog_buttons(
                    state.saving_role,
                    rx.button("Save role", loading=state.saving_role, on_click=state.save_role),
                ),
                spacing="3",
                align="stretch",
            ),
            max_width="480px",
        ),
        open=state.role_user_id != "",
        on_open_change=state.role_open_change,
    )


def _confirm_dialog() -> rx.Component:
    state = TeamState
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(state.confirm_title),
            rx.alert_dialog.description(state.confirm_message),
            rx.cond(
                state.confirm_error != "",
                rx.text(state.confirm_error, color_scheme="red", size="2", role="alert", id="confirm-error"),
            ),
            dialog_actions(
                rx.button(state.confirm_button, color_scheme="red", loading=state.confirming, on_click=state.confirm),
                state.confirming,
                margin_top="1em",
            ),
            max_width="480px",
        ),
        open=state.confirm_action != "",
        on_open_change=state.confirm_open_change,
    )


@console_page(
    route="/team",
    title="Team",
    permission=Permission.TEAM_MANAGE,
    section="Administration",
    nav_label="Team",
    order=40,
    on_load=[TeamState.load],
)
def team_page() -> rx.Component:
    state = TeamState
    return rx.vstack(
        rx.hstack(
            page_heading("Team", "Invite, block and remove users, and choose their roles."),
            rx.spacer(),
            rx.vstack(
                rx.button(
                    rx.icon("user-plus", size=16),
                    "Invite",
                    on_click=state.open_invite,
                    disabled=state.seats_full,
                    id="invite-user",
                ),
                rx.text(state.seats_text, size="2", color_scheme="gray", id="team-seats"),
                align="end",
                spacing="1",
            ),
            align="start",
            width="100%",
        ),
        rx.cond(
            state.seats_full,
            rx.callout(
                "All seats of your plan are in use. Remove a user or revoke an invitation before inviting someone.",
                icon="users",
                color_scheme="orange",
                id="seats-full",
            ),
        ),
        form_notice(state.notice),
        form_error(state.error),
        rx.cond(
            state.rows.length() > 0,
            _members_table(),
            rx.callout("No users on this page.", icon="info", id="team-empty"),
        ),
        pager(state),
        _invite_dialog(),
        _role_dialog(),
        _confirm_dialog(),
        spacing="4",
        align="stretch",
    )
