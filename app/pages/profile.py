"""Your Profile (seed 002: "your profile settings on the far left", reached from the user's
picture in the top right): every user changes their own name, picture and password, sees their
active sessions and signs out the others."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import reflex as rx

from app.components.forms import error_of, form_messages, state_form, text_field, with_submit
from app.components.layout import console_page
from app.components.tables import data_table
from app.components.upload import image_preview, image_upload
from app.services import profile
from app.services.passwords import MIN_LENGTH
from app.services.permissions import Permission
from app.services.profile import ActiveSession
from app.state.form import texts
from app.state.session import SessionState, acting
from app.state.upload import Image, ImageUploadState


class ProfileState(ImageUploadState, rx.State):
    IMAGE: ClassVar[Image] = Image(
        "picture", profile.PICTURE_RULES, saved="Your new picture is saved.", removed="Your picture is removed."
    )
    full_name: rx.Field[str] = rx.field("")
    email: rx.Field[str] = rx.field("")
    role_name: rx.Field[str] = rx.field("")
    sessions: rx.Field[list[ActiveSession]] = rx.field(default_factory=list)

    def _show(self, view: profile.ProfileView) -> None:
        mine = view.profile
        self.full_name, self.email, self.role_name = mine.full_name, mine.email, mine.role_name
        self.image_url, self.sessions = mine.picture_url, view.sessions

    async def _refresh_header(self) -> None:
        header = await self.get_state(SessionState)
        header.user_name, header.picture_url = self.full_name or self.email, self.image_url

    @rx.event
    def load(self):
        with self._attempt(), acting(self, Permission.INFO_VIEW) as (actor, session):
            self._show(profile.profile_view(session, actor))
            self._remount_form()

    @rx.event
    async def save_name(self, form: dict):
        with self._attempt("name"):
            yield
            with acting(self, Permission.INFO_VIEW) as (actor, session):
                self.full_name = profile.update_name(session, actor, str(form.get("full_name") or "")).full_name
            self._remount_form()
            self.notice = "Your name is saved."
            await self._refresh_header()

    def _save_image(self, content: bytes) -> tuple[str, str]:
        with acting(self, Permission.INFO_VIEW) as (actor, session):
            previous = profile.save_picture(session, actor, content)
            return previous, profile.profile(session, actor).picture_url

    def _remove_image(self) -> str:
        with acting(self, Permission.INFO_VIEW) as (actor, session):
            return profile.remove_picture(session, actor)

    @rx.event
    async def change_password(self, form: dict):
        with self._attempt("password"):
            yield
            # Checking and hashing passwords (Argon2) takes about a second: in a thread, so the
            # server's event loop goes on answering this tab (the busy button) and every other.
            ended, view = await asyncio.to_thread(lambda: self._change_password(form))
            self._show(view)
            # Empty password fields again.
            self._remount_form()
            others = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
            self.notice = f"Your password is changed.{others}"

    def _change_password(self, form: dict) -> tuple[int, profile.ProfileView]:
        with acting(self, Permission.INFO_VIEW) as (actor, session):
            current, new, confirm = texts(form, "current_password", "new_password", "confirm_password")
            ended = profile.change_password(
                session, actor, current=current, new=new, confirm=confirm, ip_address=self.router.session.client_ip
            )
            return ended, profile.profile_view(session, actor)

    @rx.event
    def sign_out_others(self):
        with self._attempt("sign_out"):
            with acting(self, Permission.INFO_VIEW) as (actor, session):
                ended = profile.sign_out_other_sessions(session, actor)
                self._show(profile.profile_view(session, actor))
            self.notice = f"Signed out of {ended} other session{'s' if ended != 1 else ''}."


def _picture_card() -> rx.Component:
    state = ProfileState
    return image_upload(
        state,
        label="Picture",
        hint="PNG, JPEG or SVG, at most 1 MB.",
        preview=image_preview(
            state,
            alt="Your picture",
            size="80px",
            object_fit="cover",
            border_radius="50%",
            empty=rx.avatar(fallback=state.full_name[:1], size="6", radius="full"),
        ),
    )


def _name_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        state_form(
            state,
            rx.vstack(
                with_submit(
                    text_field(
                        "Full name",
                        field_id="full_name",
                        default_value=state.full_name,
                        error=error_of(state, "full_name"),
                        max_length=200,
                    ),
                    "Save name",
                    loading=state.busy == "name",
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
        ),
    )


def _password_card() -> rx.Component:
    state = ProfileState
    return rx.card(
        state_form(
            state,
            rx.vstack(
                rx.heading("Change password", size="4", as_="h2"),
                text_field(
                    "Current password",
                    field_id="current_password",
                    type="password",
                    auto_complete="current-password",
                    error=error_of(state, "current_password"),
                ),
                text_field(
                    "New password",
                    field_id="new_password",
                    type="password",
                    auto_complete="new-password",
                    error=error_of(state, "new_password"),
                    hint=f"At least {MIN_LENGTH} characters, not containing your email.",
                ),
                text_field(
                    "Repeat new password",
                    field_id="confirm_password",
                    type="password",
                    auto_complete="new-password",
                    error=error_of(state, "confirm_password"),
                ),
                rx.text("Changing your password signs you out everywhere else.", size="1", color_scheme="gray"),
                rx.button("Change password", type="submit", loading=state.busy == "password"),
                spacing="3",
                align="start",
                width="100%",
            ),
            on_submit=state.change_password,
        ),
    )


def _session_row(row: ActiveSession) -> rx.Component:
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
                    loading=state.busy == "sign_out",
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


@console_page("/profile", "Your own name, picture, password and sessions.", on_load=[ProfileState.load])
def profile_page() -> list[rx.Component]:
    state = ProfileState
    return [
        form_messages(state),
        _picture_card(),
        _name_card(),
        _password_card(),
        _sessions_card(),
    ]
