"""Forgot password and the emailed reset link."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_error, form_messages, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page
from app.config import get_settings
from app.services import auth
from app.state.form import FormState
from app.state.public import new_password, public_transaction


class ForgotPasswordState(FormState, rx.State):
    @rx.event
    def submit(self, form: dict):
        with self._attempt("submit"):
            with public_transaction() as session:
                auth.request_password_reset(
                    session,
                    str(form.get("email", "")),
                    base_url=get_settings().public_url,
                    ip_address=self.router.session.client_ip,
                )
            self.notice = "If a user with that email exists, we have sent a link to reset the password."


class ResetPasswordState(FormState, rx.State):
    done: rx.Field[bool] = rx.field(False)

    @rx.event
    def load(self):
        self._clear_messages()
        self.done = False

    @rx.event
    def submit(self, form: dict):
        with self._attempt("submit"):
            password = new_password(form)
            with public_transaction() as session:
                auth.reset_password(session, self.router.url.query_parameters.get("token", ""), password)
            self.done = True


@public_page(route="/forgot-password", title="Forgot password")
def forgot_password_page() -> rx.Component:
    state = ForgotPasswordState
    return public_form(
        "Forgot your password?",
        rx.text("Enter your email and we will send you a link to choose a new password.", size="2"),
        form_messages(state),
        text_field("Email", field_id="email", type="email", required=True),
        rx.button("Send reset link", type="submit", width="100%", loading=state.busy == "submit"),
        rx.link("Back to sign in", href="/sign-in", size="2"),
        on_submit=state.submit,
    )


@public_page(route="/reset-password", title="Choose a new password", on_load=[ResetPasswordState.load])
def reset_password_page() -> rx.Component:
    state = ResetPasswordState
    return rx.cond(
        state.done,
        page_message(
            "Password changed",
            "Your password is changed and your other sessions are signed out.",
            link=rx.link("Sign in", href="/sign-in"),
        ),
        public_form(
            "Choose a new password",
            form_error(state.error),
            new_password_fields("New password", "Repeat the new password", error=error_of(state, "password")),
            rx.button("Set password", type="submit", width="100%", loading=state.busy == "submit"),
            on_submit=state.submit,
        ),
    )
