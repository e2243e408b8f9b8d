"""Where an invited user chooses a password, or, a person with a password already (a user of
another account), signs in with it to join."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_error, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page
from app.services import auth
from app.state.form import FormState
from app.state.public import new_password, public_transaction
from app.state.session import sign_in_redirect


class InvitationState(FormState, rx.State):
    valid: rx.Field[bool] = rx.field(False)
    email: rx.Field[str] = rx.field("")
    full_name: rx.Field[str] = rx.field("")
    account_name: rx.Field[str] = rx.field("")
    existing: rx.Field[bool] = rx.field(False)
    done: rx.Field[bool] = rx.field(False)

    def _token(self) -> str:
        return self.router.url.query_parameters.get("token", "")

    @rx.event
    def load(self):
        self._clear_messages()
        self.done = False
        with public_transaction() as session:
            invitation = auth.invitation(session, self._token())
        self.valid = invitation is not None
        if invitation is not None:
            self.email, self.full_name, self.account_name = (
                invitation.email,
                invitation.full_name,
                invitation.account_name,
            )
            self.existing = invitation.existing

    @rx.event
    def submit(self, form: dict):
        with self._attempt("submit"):
            password = new_password(form)
            with public_transaction() as session:
                auth.accept_invitation(session, self._token(), password, full_name=str(form.get("full_name", "")))
            self.done = True

    @rx.event
    def join(self, form: dict):
        """Sign in with the password the person has, and land in the account they joined."""
        self.error, self.busy = "", "join"
        yield
        with public_transaction() as session:
            outcome = auth.join_invitation(
                session, self._token(), str(form.get("password", "")), ip_address=self.router.session.client_ip
            )
        self.busy = ""
        if outcome.error:
            self.error = outcome.error
            return
        yield sign_in_redirect(outcome, "/")


@public_page(route="/accept-invite", title="Accept invitation", on_load=[InvitationState.load])
def accept_invitation_page() -> rx.Component:
    state = InvitationState
    return rx.cond(
        state.done,
        page_message(
            "Welcome aboard",
            "Your password is set. Sign in with ",
            state.email,
            ".",
            link=rx.link("Sign in", href="/sign-in", id="go-sign-in"),
        ),
        rx.cond(
            state.valid & state.existing,
            public_form(
                "Join " + state.account_name,
                rx.text(
                    "You are invited as ",
                    rx.text.strong(state.email),
                    ". Sign in with your Ledgerdesk password to join.",
                ),
                form_error(state.error),
                text_field(
                    "Password",
                    field_id="password",
                    type="password",
                    auto_complete="current-password",
                    required=True,
                ),
                rx.button("Sign in and join", type="submit", width="100%", loading=state.busy == "join", id="join"),
                on_submit=state.join,
            ),
            rx.cond(
                state.valid,
                public_form(
                    "Join " + state.account_name,
                    rx.text("You are invited as ", rx.text.strong(state.email), ". Choose a password to finish."),
                    form_error(state.error),
                    text_field(
                        "Full name",
                        field_id="full_name",
                        default_value=state.full_name,
                        error=error_of(state, "full_name"),
                    ),
                    new_password_fields("Password", "Repeat the password", error=error_of(state, "password")),
                    rx.button("Set password and join", type="submit", width="100%", loading=state.busy == "submit"),
                    on_submit=state.submit,
                ),
                page_message(
                    "Invitation not valid",
                    "This invitation link is invalid, used or expired. Ask for a new invitation.",
                    link=rx.link("Sign in", href="/sign-in"),
                ),
            ),
        ),
    )
