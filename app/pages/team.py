"""Team (seeds 000, 001, 002): invite users, resend or revoke invitations, block, unblock, remove
users and change their roles. The rules live in app/services/team.py."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import confirm_dialog, form_dialog
from app.components.forms import error_of, field, field_error, form_error, form_messages, text_field
from app.components.layout import console_page
from app.components.tables import data_table, pager, rows_or_empty
from app.config import get_settings
from app.services import team
from app.services.permissions import Permission
from app.services.team import MemberRow, Option
from app.state.confirm import ConfirmState
from app.state.events import event
from app.state.form import FormState
from app.state.paging import PagedState
from app.state.session import acting

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


def _role_id(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


class TeamDialogs(FormState, mixin=True):
    """Which of the Team page's form dialogs is open: the invitation, or the role of one user."""

    rows: rx.Field[list[MemberRow]] = rx.field(default_factory=list)
    role_options: rx.Field[list[Option]] = rx.field(default_factory=list)
    invite_open: rx.Field[bool] = rx.field(False)
    # The role preselected in the invitation: Member when the actor may give it.
    invite_role: rx.Field[str] = rx.field("")
    # The user the role dialog is about ("" = closed), their name and current role.
    role_user_id: rx.Field[str] = rx.field("")
    role_user_name: rx.Field[str] = rx.field("")
    current_role: rx.Field[str] = rx.field("")

    def _row(self, user_id: str) -> MemberRow | None:
        return next((r for r in self.rows if r.id == user_id), None)

    def _close_dialogs(self) -> None:
        self.invite_open = False
        self.role_user_id = self.role_user_name = self.current_role = ""
        self.errors = {}

    @rx.event
    def open_invite(self):
        self._clear_messages()
        self._close_dialogs()
        member = next((o.id for o in self.role_options if o.name == "Member"), "")
        self.invite_role = member or (self.role_options[0].id if self.role_options else "")
        self.invite_open = True

    @event
    def ask_change_role(self, user_id: str):
        self._clear_messages()
        self._close_dialogs()
        row = self._row(user_id)
        if row is not None:
            self.role_user_id, self.role_user_name, self.current_role = row.id, row.name, row.role_id

    @rx.event
    def dialog_open_change(self, is_open: bool):
        if not is_open and self.busy not in ("invite", "role"):
            self._close_dialogs()


class TeamState(TeamDialogs, ConfirmState, PagedState, rx.State):
    product_options: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    seats_text: rx.Field[str] = rx.field("")
    seats_full: rx.Field[bool] = rx.field(False)

    def _show(self, view: team.TeamView) -> None:
        self.rows, self.page_number, self.has_next = view.rows, view.page_number, view.has_next
        self.role_options, self.product_options = view.role_options, view.product_options
        self.seats_text, self.seats_full = view.seats_text, view.seats_full

    def _refresh(self) -> None:
        with self._attempt(), acting(self, Permission.TEAM_MANAGE) as (actor, session):
            self._show(team.team_view(session, actor, self.page_number))

    @rx.event
    def load(self):
        self.page_number = 1
        self._close_dialogs()
        self._close_confirm()
        self._refresh()

    @rx.event
    def submit_invite(self, form_data: dict):
        with self._attempt("invite", field="invite"):
            yield
            with acting(self, Permission.TEAM_MANAGE) as (actor, session):
                user = team.invite(
                    session,
                    actor,
                    email=str(form_data.get("email", "")),
                    full_name=str(form_data.get("full_name", "")),
                    role_id=_role_id(form_data.get("role")),
                    base_url=get_settings().public_url,
                    products=[
                        code for code, _ in self.product_options if form_data.get(f"product_{code}") in (True, "on")
                    ],
                )
                email = user.email
                self._show(team.team_view(session, actor, self.page_number))
            self._close_dialogs()
            self.notice = f"Invitation sent to {email}. The link in it is valid for 7 days."

    @rx.event
    def save_role(self, form_data: dict):
        role_id = _role_id(form_data.get("role"))
        with self._attempt("role", field="role"):
            yield
            with acting(self, Permission.TEAM_MANAGE) as (actor, session):
                email = team.change_role(session, actor, self.role_user_id, role_id).email
                self._show(team.team_view(session, actor, self.page_number))
            name = next((o.name for o in self.role_options if o.id == str(role_id)), "")
            self._close_dialogs()
            self.notice = f"{email} now has the role {name}. It applies from their next action."

    @event
    def act(self, action: str, user_id: str):
        """Resend an invitation or unblock a user, at once (the row's button shows it busy)."""
        with self._attempt(user_id):
            yield
            with acting(self, Permission.TEAM_MANAGE) as (actor, session):
                if action == "resend":
                    email = team.resend_invitation(session, actor, user_id, base_url=get_settings().public_url).email
                    notice = f"A new invitation was sent to {email}. Earlier links no longer work."
                else:
                    notice = f"{team.unblock(session, actor, user_id).email} is unblocked and can sign in again."
                self._show(team.team_view(session, actor, self.page_number))
            self.notice = notice

    @event
    def ask_confirm(self, action: str, user_id: str):
        self._clear_messages()
        row = self._row(user_id)
        if row is not None and action in CONFIRMATIONS:
            title, question, button = CONFIRMATIONS[action]
            self._ask(action, target=row.id, title=title, lines=[question.format(name=row.name)], button=button)

    @rx.event
    def confirm(self):
        action, user_id = self.confirm_action, self.confirm_target
        with self._confirming():
            yield
            with acting(self, Permission.TEAM_MANAGE) as (actor, session):
                if action == "block":
                    message = f"{team.block(session, actor, user_id).email} is blocked. Their sessions have ended."
                elif action == "remove":
                    message = f"{team.remove(session, actor, user_id)} was removed from the team."
                else:
                    message = f"The invitation to {team.revoke_invitation(session, actor, user_id)} was revoked."
                self._show(team.team_view(session, actor, self.page_number))
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
                    loading=TeamState.busy == row.id,
                    aria_label="Actions for " + row.email,
                )
            ),
            rx.menu.content(
                rx.cond(
                    row.status == "invited",
                    rx.fragment(
                        rx.menu.item("Resend invitation", on_click=TeamState.act("resend", row.id)),
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
                rx.cond(row.status == "blocked", rx.menu.item("Unblock", on_click=TeamState.act("unblock", row.id))),
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


def _role_select(field_id: str, default: rx.Var | str) -> rx.Component:
    """The role of an invitation or a role change, submitted as `role`."""
    return field(
        "Role",
        rx.select.root(
            rx.select.trigger(id=field_id, width="100%"),
            rx.select.content(rx.foreach(TeamState.role_options, lambda o: rx.select.item(o.name, value=o.id))),
            name="role",
            default_value=default,
        ),
        field_id=field_id,
        error=error_of(TeamState, "role"),
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
                        rx.checkbox(
                            name="product_" + option[0],
                            id="product_" + option[0],
                            default_checked=True,
                            aria_label=option[1],
                        ),
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
        field_error(error_of(state, "products"), "invite-products-error"),
        spacing="1",
    )


def _invite_dialog() -> rx.Component:
    state = TeamState
    return form_dialog(
        "Invite user",
        "We email them a link to choose a password. The link is valid for 7 days.",
        form_error(error_of(state, "invite")),
        text_field("Email", field_id="invite_email", name="email", type="email", error=error_of(state, "email")),
        text_field("Full name", field_id="invite_full_name", name="full_name", error=error_of(state, "full_name")),
        _role_select("invite_role", state.invite_role),
        _product_choice(),
        open=state.invite_open,
        on_open_change=state.dialog_open_change,
        on_submit=state.submit_invite,
        button="Send invitation",
        busy=state.busy == "invite",
    )


def _role_dialog() -> rx.Component:
    state = TeamState
    return form_dialog(
        "Change role",
        rx.text("Choose the role of ", state.role_user_name, ". It applies from their next action."),
        _role_select("new_role", state.current_role),
        open=state.role_user_id != "",
        on_open_change=state.dialog_open_change,
        on_submit=state.save_role,
        button="Save role",
        busy=state.busy == "role",
    )


def _invite_button() -> rx.Component:
    return rx.vstack(
        rx.button(
            rx.icon("user-plus", size=16),
            "Invite",
            on_click=TeamState.open_invite,
            disabled=TeamState.seats_full,
            id="invite-user",
        ),
        rx.text(TeamState.seats_text, size="2", color_scheme="gray", id="team-seats"),
        align="end",
        spacing="1",
    )


@console_page(
    "/team", "Invite, block and remove users, and choose their roles.", on_load=[TeamState.load], action=_invite_button
)
def team_page() -> list[rx.Component]:
    state = TeamState
    return [
        rx.cond(
            state.seats_full,
            rx.callout(
                "All seats of your plan are in use. Remove a user or revoke an invitation before inviting someone.",
                icon="users",
                color_scheme="orange",
                id="seats-full",
            ),
        ),
        form_messages(state),
        rows_or_empty(
            state.rows,
            data_table("team-table", ["User", "Role", "Products", "Status", "Added"], state.rows, _row),
            "No users on this page.",
            empty_id="team-empty",
        ),
        pager(state),
        _invite_dialog(),
        _role_dialog(),
        confirm_dialog(state),
    ]
