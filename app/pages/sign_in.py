from __future__ import annotations

import reflex as rx

from app.components.layout import public_page, sign_in_form
from app.config import get_settings
from app.errors import DomainError
from app.services import auth
from app.state.form import FormState
from app.state.session import current_actor, submit_sign_in


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
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        ip_address = self.router.session.client_ip
        yield from submit_sign_in(
            self, lambda session: auth.sign_in(session, email, password, ip_address=ip_address), auth.CUSTOMERS, "/"
        )


@public_page(route="/sign-in", title="Sign in", on_load=[SignInState.load])
def sign_in_page() -> rx.Component:
    state = SignInState
    return sign_in_form(
        "Sign in",
        state,
        rx.link("Forgot your password?", href="/forgot-password", size="2"),
        rx.cond(
            state.signup_enabled, rx.link("New here? Create an account", href="/sign-up", size="2", id="go-sign-up")
        ),
    )
