"""Your Profile (seed 002: "your profile settings on the far left", reached from the user's
picture in the top right): every user changes their own name, picture and password, sees their
active sessions and signs out the others."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.forms import form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.components.tables import data_table
from app.db import transaction
from app.errors import DomainError
from app.services import company, profile
from app.services.company import account_timezone
from app.services.passwords import MIN_LENGTH
from app.services.permissions import Actor, Permission
from app.state.session import SessionState, current_actor

PICTURE_UPLOAD_ID = "picture-upload"
PICTURE_ACCEPT = {"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/svg+xml": [".svg"]}


@dataclass
class SessionRow:
    device: str = ""
    ip_address: str = ""
    signed_in: str = ""
    last_seen: str = ""
    current: bool = False


class ProfileState(rx.State):
    full_name: str = ""
    saved_name: str = ""
    email: str = ""
    role_name: str = ""
    picture_url: str = ""
    sessions: list[SessionRow] = []
    full_name_error: str = ""
    picture_error: str = ""
    current_password_error: str = ""
    new_password_error: str = ""
    confirm_password_error: str = ""
    error: str = ""
    notice: str = ""
    saving_name: bool = False
    changing_password: bool = False
    uploading: bool = False

    def _clear(self) -> None:
        self.full_name_error = self.picture_error = self.error = self.notice = ""
        self.current_password_error = self.new_password_error = self.confirm_password_error = ""

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            mine = profile.profile(session, actor)
            sessions = profile.active_sessions(session, actor, account_timezone(session, actor))
        self.full_name = self.saved_name = mine.full_name
        self.email, self.role_name, self.picture_url = mine.email, mine.role_name, mine.picture_url
        self.sessions = [SessionRow(s.device, s.ip_address, s.signed_in, s.last_seen, s.current) for s in sessions]

    async def _refresh_header(self) -> None:
        header = await self.get_state(SessionState)
        header.user_name, header.picture_url = self.saved_name or self.email, self.picture_url

    @rx.event
    def load(self):
        self._clear()
        self.saving_name = self.changing_password = self.uploading = False
        try:
            self._reload(current_actor(self, Permission.INFO_VIEW))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_full_name(self, value: str):
        self.full_name = value

    @rx.event
    async def save_name(self, _form_data: dict):
        self._clear()
        self.saving_name = True
        yield
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                user = profile.update_name(session, actor, self.full_name)
        except DomainError as exc:
            self.full_name_error = exc.message
        else:
            self.full_name = self.saved_name = user.full_name
            self.notice = "Your name is saved."
            await self._refresh_header()
        self.saving_name = False

    @rx.event
    async def upload_picture(self, files: list[rx.UploadFile]):
        self._clear()
        if not files:
            return
        self.uploading = True
        yield
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            # One byte over the limit is enough to refuse the file.
            content = await files[0].read(company.LOGO_MAX_BYTES + 1)
            with transaction() as session:
                previous = profile.save_picture(session, actor, content)
                mine = profile.profile(session, actor)
        except DomainError as exc:
            self.picture_error = exc.message
        else:
            company.discard_file(previous)
            self.picture_url = mine.picture_url
            self.notice = "Your new picture is saved."
            await self._refresh_header()
        self.uploading = False

    @rx.event
    def picture_rejected(self, _rejected: list[dict]):
        self._clear()
        self.picture_error = profile.PICTURE_RULES

    @rx.event
    async def remove_picture(self):
        self._clear()
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                previous = profile.remove_picture(session, actor)
        except DomainError as exc:
            self.picture_error = exc.message
            return
        company.discard_file(previous)
        self.picture_url = ""
        self.notice = "Your picture is removed."
        await self._refresh_header()

    @rx.event
    def change_password(self, form_data: dict):
        self._clear()
        self.changing_password = True
        yield
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                ended = profile.change_password(
                    session,
                    actor,
                    current=form_data.get("current_password", ""),
                    new=form_data.get("new_password", ""),
                    confirm=form_data.get("confirm_password", ""),
                )
            self._reload(actor)
        except DomainError as exc:
            if exc.field in ("current_password", "new_password", "confirm_password"):
                setattr(self, f"{exc.field}_error", exc.message)
            else:
                self.error = exc.message
        else:
            others = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
            self.notice = f"Your password is changed.{others}"
            yield rx.set_value("current_password", "")
            yield rx.set_value("new_password", "")
            yield rx.set_value("confirm_password", "")
        self.changing_password = False

    @rx.event
    def sign_out_others(self):
        self._clear()
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                ended = profile.sign_out_other_sessions(session, actor)
            self._reload(actor)
        except DomainError as exc:
            self.error = exc.message
            return
        self.notice = f"Signed out of {ended} other session{'s' if ended != 1 else ''}."


def _picture_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        rx.hstack(
            rx.cond(
                state.picture_url != "",
                rx.image(
                    src=state.picture_url,
                    alt="Your picture",
                    width="80px",
                    height="80px",
                    object_fit="cover",
                    border_radius="50%",
                    id="picture-preview",
                ),
                rx.avatar(fallback=state.saved_name[:1], size="6", radius="full"),
            ),
            rx.vstack(
                rx.text("Picture", class_name="ld-label"),
                rx.hstack(
                    rx.upload.root(
                        rx.button(
                            rx.icon("upload", size=16),
                            "Upload picture",
                            variant="soft",
                            loading=state.uploading,
                            type="button",
                        ),
                        id=PICTURE_UPLOAD_ID,
                        accept=PICTURE_ACCEPT,
                        max_files=1,
                        max_size=company.LOGO_MAX_BYTES,
                        multiple=False,
                        on_drop=state.upload_picture(rx.upload_files(upload_id=PICTURE_UPLOAD_ID)),
                        on_drop_rejected=state.picture_rejected,
                    ),
                    rx.cond(
                        state.picture_url != "",
                        rx.button("Remove picture", variant="ghost", color_scheme="red", on_click=state.remove_picture),
                    ),
                    spacing="3",
                    align="center",
                ),
                rx.text("PNG, JPEG or SVG, at most 1 MB.", size="1", color_scheme="gray"),
                rx.cond(
                    state.picture_error != "",
                    rx.text(state.picture_error, size="2", color_scheme="red", id="picture-error", role="alert"),
                ),
                spacing="2",
            ),
            spacing="5",
            align="center",
        ),
    )


def _name_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(
                    text_field(
                        "Full name",
                        field_id="full_name",
                        value=state.full_name,
                        on_change=state.set_full_name,
                        error=state.full_name_error,
                        max_length=200,
                    ),
                    rx.button(
                        "Save name",
                        type="submit",
                        loading=state.saving_name,
                        disabled=state.full_name == state.saved_name,
                        margin_top="1.6em",
                    ),
                    align="start",
                    spacing="3",
                    width="100%",
                ),
                rx.text(
                    "Email ",
                    rx.text.strong(state.email, id="profile-email"),
                    " · Role ",
                    rx.text.strong(state.role_name),
                    size="2",
                    color_scheme="gray",
                ),
                spacing="2",
                width="100%",
            ),
            on_submit=state.save_name,
            reset_on_submit=False,
        ),
    )


def _password_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Change password", size="4", as_="h2"),
                text_field(
                    "Current password",
                    field_id="current_password",
                    type="password",
                    auto_complete="current-password",
                    error=state.current_password_error,
                ),
                text_field(
                    "New password",
                    field_id="new_password",
                    type="password",
                    auto_complete="new-password",
                    error=state.new_password_error,
                    hint=f"At least {MIN_LENGTH} characters, not containing your email.",
                ),
                text_field(
                    "Repeat new password",
                    field_id="confirm_password",
                    type="password",
                    auto_complete="new-password",
                    error=state.confirm_password_error,
                ),
                rx.text("Changing your password signs you out everywhere else.", size="1", color_scheme="gray"),
                rx.button("Change password", type="submit", loading=state.changing_password),
                spacing="3",
                align="start",
                width="100%",
            ),
            on_submit=state.change_password,
            reset_on_submit=False,
        ),
    )


def _session_row(row: SessionRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(row.device, rx.cond(row.current, rx.badge("This device", color_scheme="green")), spacing="2")
        ),
        rx.table.cell(row.ip_address),
        rx.table.cell(row.signed_in),
        rx.table.cell(row.last_seen),
    )


def _sessions_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Active sessions", size="4", as_="h2"),
                rx.spacer(),
                rx.button(
                    "Sign out all other sessions",
                    variant="soft",
                    color_scheme="red",
                    on_click=state.sign_out_others,
                    disabled=state.sessions.length() <= 1,
                ),
                width="100%",
                align="center",
            ),
            data_table(
                "sessions",
                ["Device", "IP address", "Signed in", "Last seen"],
                state.sessions,
                _session_row,
                actions=False,
            ),
            spacing="3",
            width="100%",
        ),
    )


@console_page(
    route="/profile",
    title="Your Profile",
    permission=Permission.INFO_VIEW,
    order=-1,
    on_load=[ProfileState.load],
)
def profile_page() -> rx.Component:
    state = ProfileState
    return rx.vstack(
        page_heading("Your Profile", "Your own name, picture, password and sessions."),
        form_notice(state.notice),
        form_error(state.error),
        _picture_card(),
        _name_card(),
        _password_card(),
        _sessions_card(),
        spacing="4",
        align="stretch",
    )
