from __future__ import annotations

import reflex as rx

from app.components.forms import form_messages, text_field
from app.components.layout import public_form, public_page
from app.config import get_settings
from app.errors import DomainError
from app.services import auth
from app.state.form import FormState
from app.state.public import public_transaction
from app.state.session import current_actor, sign_in_redirect


class SignInState(FormState, rx.State):
    signup_enabled: rx.Field[bool] = rx.field(False)

    @rx.event
    def load(self):
        self._clear_messages()
        self.signup_enabled = get_settings().signup_enabled
        params = self.router.url.query_parameters
        self.notice = "That sign-in link expired. Please sign in again." if params.get("expired") else ""
        try:
            current_actor(self)
        except DomainError:
            return None
        return rx.redirect("/")

    @rx.event
    def submit(self, form: dict):
        self.error, self.busy = "", "submit"
        yield
        with public_transaction() as session:
            outcome = auth.sign_in(
                session,
                str(form.get("email", "")),
                str(form.get("password", "")),
                ip_address=self.router.session.client_ip,
            )
        self.busy = ""
        if outcome.error:
            self.error = outcome.error
            return
        yield sign_in_redirect(outcome, self.router.url.query_parameters.get("next", "/"))


@public_page(route="/sign-in", title="Sign in", on_load=[SignInState.load])
def sign_in_page() -> rx.Component:
    state = SignInState
    return public_form(
        "Sign in",
        form_messages(state),
        text_field("Email", field_id="email", type="email", auto_complete="username", required=True),
        text_field("Password", field_id="password", type="password", auto_complete="current-password", required=True),
        rx.button("Sign in", type="submit", loading=state.busy == "submit", width="100%", id="sign-in-submit"),
        rx.link("Forgot your password?", href="/forgot-password", size="2"),
        rx.cond(
            state.signup_enabled, rx.link("New here? Create an account", href="/sign-up", size="2", id="go-sign-up")
        ),
        on_submit=state.submit,
    )
