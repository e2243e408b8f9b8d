"""Where an invited user chooses a password, or, a person with a password already (a user of
another account), signs in with it to join; or, signed in already as the invitee, joins with one
click (signed in as someone else: asked to sign out first)."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, form_error, new_password_fields, text_field
from app.components.layout import page_message, public_form, public_page
from app.errors import DomainError
from app.services import auth
from app.state.form import FormState
from app.state.public import new_password, public_transaction
from app.state.session import SessionState, current_actor, sign_in_redirect


class InvitationState(FormState, rx.State):
    valid: rx.Field[bool] = rx.field(False)
    email: rx.Field[str] = rx.field("")
    full_name: rx.Field[str] = rx.field("")
    account_name: rx.Field[str] = rx.field("")
    existing: rx.Field[bool] = rx.field(False)
    done: rx.Field[bool] = rx.field(False)
    # The email of whoever is signed in to the console in this browser ("" when nobody is).
    signed_in_as: rx.Field[str] = rx.field("")

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
        try:
            self.signed_in_as = current_actor(self).email
        except DomainError:
            self.signed_in_as = ""

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

    @rx.event
    def join_signed_in(self, form: dict):
        """The signed-in invitee joins without their password again and lands in the new account."""
        outcome = None
        with self._attempt("join"):
            actor = current_actor(self)
            with public_transaction() as session:
                outcome = auth.join_as(session, actor, self._token())
        if outcome is None:
            return None
        if outcome.error:
            self.error = outcome.error
            return None
        return sign_in_redirect(outcome, "/")


def _signed_in_join() -> rx.Component:
    state = InvitationState
    return rx.cond(
        state.signed_in_as == state.email,
        public_form(
            "Join " + state.account_name,
            rx.text("You are signed in as ", rx.text.strong(state.email), ". Join with this sign-in."),
            form_error(state.error),
            rx.button("Join", type="submit", width="100%", loading=state.busy == "join", id="join-signed-in"),
            on_submit=state.join_signed_in,
        ),
        page_message(
            "Signed in as someone else",
            "This invitation is for ",
            rx.text.strong(state.email),
            ", and you are signed in as ",
            rx.text.strong(state.signed_in_as),
            ". Sign out, then open the link again.",
            link=rx.button("Sign out", on_click=SessionState.sign_out, id="invite-sign-out"),
        ),
    )


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
            state.valid & (state.signed_in_as != ""),
            _signed_in_join(),
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
        ),
    )
