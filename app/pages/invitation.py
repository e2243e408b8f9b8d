"""Where an invited user chooses a password."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_error, new_password_fields, text_field
from app.components.layout import public_page
from app.db import transaction
from app.errors import ValidationFailed
from app.models import Account
from app.services import auth


class InvitationState(rx.State):
    valid: bool = False
    email: str = ""
    full_name: str = ""
    account_name: str = ""
    error: str = ""
    password_error: str = ""
    done: bool = False

    def _token(self) -> str:
        return self.router.url.query_parameters.get("token", "")

    @rx.event
    def load(self):
        self.error = ""
        self.password_error = ""
        self.done = False
        with transaction() as session:
            user = auth.invitation_user(session, self._token())
            self.valid = user is not None
            if user is not None:
                self.email = user.email
                self.full_name = user.full_name
                self.account_name = session.get(Account, user.account_id).name

    @rx.event
    def submit(self, form_data: dict):
        self.error = ""
        self.password_error = ""
        password = str(form_data.get("password", ""))
        if password != str(form_data.get("confirm", "")):
            self.password_error = "The two passwords differ."
            return
        try:
            with transaction() as session:
                auth.accept_invitation(session, self._token(), password, full_name=str(form_data.get("full_name", "")))
        except ValidationFailed as exc:
            if exc.field == "password":
                self.password_error = exc.message
            else:
                self.error = exc.message
            return
        self.done = True


@public_page(route="/accept-invite", title="Accept invitation", on_load=[InvitationState.load])
def accept_invitation_page() -> rx.Component:
    return rx.cond(
        InvitationState.done,
        rx.vstack(
            rx.heading("Welcome aboard", size="6", as_="h1"),
            rx.text("Your password is set. Sign in with ", InvitationState.email, "."),
            rx.link("Sign in", href="/sign-in", id="go-sign-in"),
            spacing="3",
        ),
        rx.cond(
            InvitationState.valid,
            rx.form(
                rx.vstack(
                    rx.heading("Join ", InvitationState.account_name, size="6", as_="h1"),
                    rx.text(
                        "You are invited as ", rx.text.strong(InvitationState.email), ". Choose a password to finish."
                    ),
                    form_error(InvitationState.error),
                    text_field("Full name", field_id="full_name", default_value=InvitationState.full_name),
                    new_password_fields("Password", "Repeat the password", error=InvitationState.password_error),
                    rx.button("Set password and join", type="submit", width="100%"),
                    spacing="3",
                    align="stretch",
                ),
                on_submit=InvitationState.submit,
            ),
            rx.vstack(
                rx.heading("Invitation not valid", size="6", as_="h1"),
                rx.text("This invitation link is invalid, used or expired. Ask for a new invitation."),
                rx.link("Sign in", href="/sign-in"),
                spacing="3",
            ),
        ),
    )
