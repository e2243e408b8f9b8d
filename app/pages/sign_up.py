"""Sign-up (a new company's account) and the emailed link that confirms the email and opens it."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_error, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page
from app.config import get_settings
from app.services import auth, signup
from app.state.form import FormState
from app.state.public import new_password, public_transaction
from app.state.session import sign_in_redirect

# The browser's timezone, which the new account starts in.
BROWSER_TIMEZONE = "Intl.DateTimeFormat().resolvedOptions().timeZone"


class SignUpState(FormState, rx.State):
    enabled: rx.Field[bool] = rx.field(True)
    sent_to: rx.Field[str] = rx.field("")
    _timezone: str = "UTC"

    @rx.event
    def load(self):
        self._clear_messages()
        self.sent_to = ""
        self.enabled = get_settings().signup_enabled
        return rx.call_script(BROWSER_TIMEZONE, callback=SignUpState.keep_timezone)

    @rx.event
    def keep_timezone(self, timezone: str):
        self._timezone = str(timezone or "UTC")[:64]

    @rx.event
    def submit(self, form: dict):
        with self._attempt("submit"):
            password = new_password(form)
            with public_transaction() as session:
                self.sent_to = signup.sign_up(
                    session,
                    signup.SignUp(
                        company=str(form.get("company", "")),
                        full_name=str(form.get("full_name", "")),
                        email=str(form.get("email", "")),
                        password=password,
                        timezone=self._timezone,
                    ),
                    base_url=get_settings().public_url,
                    ip_address=self.router.session.client_ip,
                )


class VerifyEmailState(rx.State):
    error: rx.Field[str] = rx.field("")

    @rx.event
    def load(self):
        with public_transaction() as session:
            outcome = auth.verify_sign_up(session, self.router.url.query_parameters.get("token", ""))
        self.error = outcome.error
        if not outcome.error:
            return sign_in_redirect(outcome, "/billing")
        return None


@public_page(route="/sign-up", title="Sign up", on_load=[SignUpState.load])
def sign_up_page() -> rx.Component:
    state = SignUpState
    return rx.cond(
        ~state.enabled,
        page_message("Sign-up is closed", signup.CLOSED, link=rx.link("Sign in", href="/sign-in")),
        rx.cond(
            state.sent_to != "",
            page_message(
                "Check your email",
                "We sent a link to ",
                state.sent_to,
                ". Open it within 24 hours to confirm your email and open your account.",
                link=rx.link("Back to sign in", href="/sign-in"),
            ),
            public_form(
                "Create your account",
                form_error(state.error),
                text_field("Company name", field_id="company", error=error_of(state, "company"), required=True),
                text_field("Your full name", field_id="full_name", error=error_of(state, "full_name"), required=True),
                text_field(
                    "Email",
                    field_id="email",
                    type="email",
                    auto_complete="username",
                    error=error_of(state, "email"),
                    required=True,
                ),
                new_password_fields("Password", "Repeat the password", error=error_of(state, "password")),
                rx.button("Sign up", type="submit", width="100%", loading=state.busy == "submit", id="sign-up-submit"),
                rx.link("Already have an account? Sign in", href="/sign-in", size="2"),
                on_submit=state.submit,
            ),
        ),
    )


@public_page(route="/verify-email", title="Confirm your email", on_load=[VerifyEmailState.load])
def verify_email_page() -> rx.Component:
    return rx.cond(
        VerifyEmailState.error != "",
        page_message(
            "Link not valid", VerifyEmailState.error, link=rx.link("Sign up", href="/sign-up", id="go-sign-up")
        ),
        rx.center(rx.spinner(), padding="8"),
    )
