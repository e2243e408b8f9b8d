"""The operator's sign-in and invitation pages (signed-out visitors)."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_messages, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page, sign_in_form
from app.services.operator import staff
from app.state.form import FormState
from app.state.public import new_password, public_transaction
from app.state.session import submit_sign_in


class OperatorSignInState(FormState, rx.State):
    @rx.event
    def load(self):
        self._clear_messages()
        expired = self.router.url.query_parameters.get("expired")
        self.notice = "That sign-in link expired. Please sign in again." if expired else ""

    @rx.event
    def submit(self, form: dict):
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        ip_address = self.router.session.client_ip
        yield from submit_sign_in(
            self,
            lambda session: staff.sign_in(session, email, password, ip_address=ip_address),
            staff.STAFF,
            "/operator",
        )


@public_page(route="/operator/sign-in", title="Operator sign-in", on_load=[OperatorSignInState.load])
def operator_sign_in_page() -> rx.Component:
    return sign_in_form("Operator sign-in", OperatorSignInState)


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
