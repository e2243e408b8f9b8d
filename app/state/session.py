"""The signed-in user as the browser sees them, and the server-side check every handler uses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import quote

import reflex as rx
from reflex.event import EventSpec
from reflex.middleware import Middleware
from sqlmodel import Session

from app.config import get_settings
from app.db import read_only, reporting_transaction, transaction
from app.errors import DomainError, NotAuthenticated, changes_refused
from app.services import auth, ledger
from app.services.console import console_header
from app.services.credentials import Credentials, SignInOutcome
from app.services.operator import staff
from app.services.permissions import Actor, Permission, require
from app.state.events import event
from app.state.form import FormState
from app.state.public import public_transaction

if TYPE_CHECKING:
    from reflex.app import App
    from reflex.state import BaseState
    from reflex_base.event import Event


def cookie_value(state: rx.State, name: str) -> str:
    """A cookie sent with the websocket handshake (the HttpOnly session cookies are read so)."""
    cookie = SimpleCookie()
    try:
        cookie.load(state.router.headers.cookie or "")
    except Exception:  # a malformed Cookie header means "not signed in"
        return ""
    morsel = cookie.get(name)
    return morsel.value if morsel else ""


def session_token(state: rx.State) -> str:
    """The customer's session token."""
    return cookie_value(state, auth.SESSION_COOKIE)


def current_actor(state: rx.State, permission: Permission | None = None) -> Actor:
    """Load the actor fresh from the database and check the permission; raises DomainError.
    Called at the start of every event handler that reads or changes account data."""
    with transaction() as session:
        # An operator's "View as" (their own cookie, never a customer's) reads the console first.
        viewing = cookie_value(state, staff.VIEW_AS_COOKIE)
        actor = staff.viewer_for_token(session, viewing) if viewing else None
        actor = actor or auth.actor_for_session_token(session, session_token(state))
    if actor is None:
        raise NotAuthenticated("Your session has ended. Please sign in again.")
    return require(actor, permission) if permission is not None else actor


def sign_in_redirect(outcome: SignInOutcome, target: str = "/", credentials: Credentials = auth.CUSTOMERS) -> EventSpec:
    """Hand a sign-in code to the browser: put the secret it is bound to in the handoff cookie and
    trade the code at the handoff path for the HttpOnly session cookie, then open `target`."""
    path = credentials.handoff_path
    url = f"{path}?code={quote(outcome.handoff_code)}&next={quote(auth.safe_next(target))}"
    secure = "; Secure" if get_settings().public_url.startswith("https://") else ""
    cookie = f"{credentials.handoff_cookie}={outcome.binding}; Path={path}; Max-Age=60; SameSite=Strict{secure}"
    return rx.call_script(f"document.cookie = {json.dumps(cookie)}; window.location.href = {json.dumps(url)}")


def post_to(action: str) -> EventSpec:
    """Send the browser to `action` by a same-origin POST (sign-out: the HttpOnly cookie can only
    be cleared by an HTTP response, and a GET would let any page do it)."""
    return rx.call_script(
        "const form = document.createElement('form'); form.method = 'post';"
        f" form.action = {json.dumps(action)}; document.body.appendChild(form); form.submit()"
    )


def submit_sign_in(
    state: FormState, sign_in: Callable[[Session], SignInOutcome], credentials: Credentials, default: str
) -> Iterator[EventSpec | None]:
    """A sign-in form's submit (customers' and operators'): check the credentials in a transaction
    of their own, show the error, or hand the code to the browser for the page in `next=`."""
    state.error, state.busy = "", "submit"
    yield None
    with public_transaction() as session:
        outcome = sign_in(session)
    state.busy = ""
    if outcome.error:
        state.error = outcome.error
        return
    yield sign_in_redirect(outcome, state.router.url.query_parameters.get("next", default), credentials)


@contextmanager
def acting(state: rx.State, permission: Permission, *, reporting: bool = False) -> Iterator[tuple[Actor, Session]]:
    """The one way a handler works on account data: the signed-in actor, checked for `permission`
    first, and then one transaction for its work (committed when the block ends without error).

        with acting(self, Permission.BILLING_MANAGE) as (actor, session):
            spend.save_settings(session, actor, ...)

    `reporting=True`: a page that only reads many rows reads them through `reporting_transaction`
    (the read replica when one is configured); the actor is still loaded from the primary.
    """
    actor = current_actor(state, permission)
    if reporting:
        with reporting_transaction() as session:
            yield actor, session
        return
    with transaction() as session:
        refusal: DomainError | None = None
        if actor.viewing:
            refusal = staff.ViewingReadOnly()
        elif ledger.suspended(session, actor.account_id):
            refusal = ledger.AccountSuspended()
        if refusal is None:
            yield actor, session
            return
        # Nothing changes, in the database or at Stripe.
        read_only(session, refusal)
        refused = changes_refused.set(refusal)
        try:
            yield actor, session
        finally:
            changes_refused.reset(refused)


def _session_key(state: rx.State) -> str:
    """Which sign-in a tab's states were loaded for (a customer's, or an operator's "View as"): a
    digest, so not even the server-side state store holds the token."""
    signed_in = f"{session_token(state)} {cookie_value(state, staff.VIEW_AS_COOKIE)}"
    return hashlib.sha256(signed_in.encode()).hexdigest()


async def reset_page_states(state: BaseState) -> None:
    """Empty every page state of the tab (all of them, also those a state manager has not loaded
    for this event) and remember the sign-in they now belong to."""
    root = state._get_root_state()
    pending = list(root.get_substates())
    while pending:
        cls = pending.pop()
        pending.extend(cls.get_substates())
        if not cls.__module__.startswith("reflex"):  # Reflex's own internal states hold no account data
            (await root.get_state(cls)).reset()
    (await root.get_state(SessionState))._loaded_for = _session_key(root)  # type: ignore[arg-type]


class ActorChangeReset(Middleware):
    """Reflex keeps page states per tab, across sign-outs and sign-ins. Before any event of a tab
    whose session differs from the one its states were loaded for (signed out, someone else signed
    in, a new session after expiry), every page state is reset, so nothing of the previous user
    reaches the page or can be sent back."""

    async def preprocess(self, app: App, state: BaseState, event: Event) -> None:
        session_state = await state._get_root_state().get_state(SessionState)
        if session_state._loaded_for != _session_key(state):  # type: ignore[arg-type]
            await reset_page_states(state)


class SessionState(rx.State):
    _loaded_for: str = ""
    signed_in: rx.Field[bool] = rx.field(False)
    user_name: rx.Field[str] = rx.field("")
    user_email: rx.Field[str] = rx.field("")
    role_name: rx.Field[str] = rx.field("")
    account_name: rx.Field[str] = rx.field("")
    account_public_id: rx.Field[str] = rx.field("")
    plan_name: rx.Field[str] = rx.field("")
    logo_url: rx.Field[str] = rx.field("")
    picture_url: rx.Field[str] = rx.field("")
    past_due: rx.Field[bool] = rx.field(False)
    suspended: rx.Field[bool] = rx.field(False)
    # An operator viewing the account: the banner says so, and Sign out ends the viewing.
    viewing: rx.Field[bool] = rx.field(False)
    permissions: rx.Field[list[str]] = rx.field(default_factory=list)
    # The person's other accounts, for the user menu's switch.
    memberships: rx.Field[list[auth.Membership]] = rx.field(default_factory=list)

    @rx.event
    async def load_console(self):
        """on_load of every console page: refresh who is signed in, or send them to sign in
        (with nothing left of the session that ended, for instance by expiring)."""
        try:
            actor = current_actor(self)
        except NotAuthenticated:
            await reset_page_states(self)
            return rx.redirect(f"/sign-in?next={self.router.url.path or '/'}")
        with transaction() as session:
            header = console_header(session, actor)
            self.memberships = auth.memberships(session, actor)
        self.account_name, self.account_public_id = header.account_name, header.account_public_id
        self.plan_name, self.logo_url, self.picture_url = header.plan_name, header.logo_url, header.picture_url
        self.past_due, self.suspended = header.past_due, header.suspended
        self.user_name = actor.full_name or actor.email
        self.user_email = actor.email
        self.role_name = actor.role_name
        self.viewing = actor.viewing
        self.permissions = sorted(p.value for p in actor.permissions)
        self.signed_in = True

    @event
    def switch_account(self, user_public_id: str):
        """Sign this browser into another account of the signed-in person, on its first page."""
        actor = current_actor(self)
        with transaction() as session:
            outcome = auth.switch_membership(session, actor, user_public_id)
        return sign_in_redirect(outcome, "/")

    @rx.event
    async def sign_out(self):
        if cookie_value(self, staff.VIEW_AS_COOKIE):
            # An operator's "View as" ends (audited) and goes back to the account in the back office.
            await reset_page_states(self)
            return post_to("/operator/auth/view-as/exit")
        with transaction() as session:
            auth.sign_out(session, session_token(self))
        await reset_page_states(self)
        return post_to("/auth/sign-out")
