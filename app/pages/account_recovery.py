"""Forgot password and the emailed reset link."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_error, form_notice, new_password_fields, text_field
from app.components.layout import public_page
from app.config import get_settings
from app.db import transaction
from app.errors import ValidationFailed
from app.services import auth


class ForgotPasswordState(rx.State):
    notice: str = ""

    @rx.event
    def submit(self, form_data: dict):
        with transaction() as session:
            auth.request_password_reset(session, str(form_data.get("email", "")), base_url=get_settings().public_url)
        self.notice = "If a user with that email exists, we have sent a link to reset the password."


class ResetPasswordState(rx.State):
    error: str = ""
    password_error: str = ""
    done: bool = False

    @rx.event
    def load(self):
        self.error = ""
        self.password_error = ""
        self.done = False

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
                auth.reset_password(session, self.router.url.query_parameters.get("token", ""), password)
        except ValidationFailed as exc:
            if exc.field == "password":
                self.password_error = exc.message
            else:
                self.error = exc.message
            return
        self.done = True


@public_page(route="/forgot-password", title="Forgot password")
def forgot_password_page() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Forgot your password?", size="6", as_="h1"),
            rx.text("Enter your email and we will send you a link to choose a new password.", size="2"),
            form_notice(ForgotPasswordState.notice),
            text_field("Email", field_id="email", type="email", required=True),
            rx.button("Send reset link", type="submit", width="100%"),
            rx.link("Back to sign in", href="/sign-in", size="2"),
            spacing="3",
            align="stretch",
        ),
        on_submit=ForgotPasswordState.submit,
    )


@public_page(route="/reset-password", title="Choose a new password", on_load=[ResetPasswordState.load])
def reset_password_page() -> rx.Component:
    return rx.cond(
        ResetPasswordState.done,
        rx.vstack(
            rx.heading("Password changed", size="6", as_="h1"),
            rx.text("Your password is changed and your other sessions are signed out."),
            rx.link("Sign in", href="/sign-in"),
            spacing="3",
        ),
        rx.form(
            rx.vstack(
                rx.heading("Choose a new password", size="6", as_="h1"),
                form_error(ResetPasswordState.error),
                new_password_fields("New password", "Repeat the new password", error=ResetPasswordState.password_error),
                rx.button("Set password", type="submit", width="100%"),
                spacing="3",
                align="stretch",
            ),
            on_submit=ResetPasswordState.submit,
        ),
    )
