"""The operator's sign-in and invitation pages (signed-out visitors)."""

from __future__ import annotations

import json
from urllib.parse import quote

import reflex as rx

from app.components.forms import error_of, form_messages, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page
from app.config import get_settings
from app.services.auth import safe_next
from app.services.operator import staff
from app.state.form import FormState
from app.state.public import new_password, public_transaction


class OperatorSignInState(FormState, rx.State):
    @rx.event
    def load(self):
        self._clear_messages()
        expired = self.router.url.query_parameters.get("expired")
        self.notice = "That sign-in link expired. Please sign in again." if expired else ""

    @rx.event
    def submit(self, form: dict):
        self.error, self.busy = "", "submit"
        yield
        with public_transaction() as session:
            outcome = staff.sign_in(
                session,
                str(form.get("email", "")),
                str(form.get("password", "")),
                ip_address=self.router.session.client_ip,
            )
        self.busy = ""
        if outcome.error:
            self.error = outcome.error
            return
        target = safe_next(self.router.url.query_parameters.get("next", "/operator"))
        url = f"{staff.HANDOFF_PATH}?code={quote(outcome.handoff_code)}&next={quote(target)}"
        secure = "; Secure" if get_settings().public_url.startswith("https://") else ""
        cookie = (
            f"{staff.HANDOFF_COOKIE}={outcome.binding}; Path={staff.HANDOFF_PATH}; Max-Age=60; SameSite=Strict{secure}"
        )
        yield rx.call_script(f"document.cookie = {json.dumps(cookie)}; window.location.href = {json.dumps(url)}")


@public_page(route="/operator/sign-in", title="Operator sign-in", on_load=[OperatorSignInState.load])
def operator_sign_in_page() -> rx.Component:
    state = OperatorSignInState
    return public_form(
        "Operator sign-in",
        form_messages(state),
        text_field("Email", field_id="email", type="email", auto_complete="username", required=True),
        text_field("Password", field_id="password", type="password", auto_complete="current-password", required=True),
        rx.button("Sign in", type="submit", loading=state.busy == "submit", width="100%", id="sign-in-submit"),
        on_submit=state.submit,
    )


class OperatorInvitationState(FormState, rx.State):
    email: rx.Field[str] = rx.field("")
    done: rx.Field[bool] = rx.field(False)

    @rx.event
    def load(self):
        self._clear_messages()
        self.done = False
        with public_transaction() as session:
            self.email = staff.invited_email(session, self._token()) or ""

    def _token(self) -> str:
        return self.router.url.query_parameters.get("token", "")

    @rx.event
    def submit(self, form: dict):
        with self._attempt("submit"), public_transaction() as session:
            staff.accept_invitation(
                session, self._token(), new_password(form), full_name=str(form.get("full_name") or "")
            )
            self.done = True


@public_page(route="/operator/accept-invite", title="Operator invitation", on_load=[OperatorInvitationState.load])
def operator_invitation_page() -> rx.Component:
    state = OperatorInvitationState
    return rx.cond(
        state.done,
        page_message("Password set", "You can sign in now.", link=rx.link("Sign in", href="/operator/sign-in")),
        rx.cond(
            state.email != "",
            public_form(
                "Join the operator back office",
                rx.text("Choose a password for ", rx.text.strong(state.email), "."),
                form_messages(state),
                text_field("Your name", field_id="full_name"),
                new_password_fields("Password", "Repeat the password", error=error_of(state, "password")),
                rx.button("Set password", type="submit", loading=state.busy == "submit", width="100%"),
                on_submit=state.submit,
            ),
            page_message(
                "Invitation not valid",
                "This invitation link is invalid, used or expired. Ask for a new one.",
                link=rx.link("Sign in", href="/operator/sign-in"),
            ),
        ),
    )
