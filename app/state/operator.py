"""The signed-in operator, as `app.state.session` is for customers: read from the operator's own
HttpOnly cookie (never the customer's) and loaded afresh from the database on every event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import reflex as rx
from sqlmodel import Session

from app.db import transaction
from app.errors import NotAuthenticated
from app.services import live
from app.services.operator import chat, staff
from app.services.operator.staff import Operator
from app.state.live import LiveState
from app.state.session import cookie_value, post_to, reset_page_states


def operator_token(state: rx.State) -> str:
    return cookie_value(state, staff.OPERATOR_COOKIE)


def current_operator(state: rx.State) -> Operator:
    """The signed-in operator, or NotAuthenticated. Called first by every operator handler."""
    with transaction() as session:
        return staff.operator_for_token(session, operator_token(state))


@contextmanager
def operating(state: rx.State) -> Iterator[tuple[Operator, Session]]:
    """The one way an operator handler works: the signed-in operator, then one transaction."""
    operator = current_operator(state)
    with transaction() as session:
        yield operator, session


class OperatorShellState(LiveState, rx.State):
    signed_in: rx.Field[bool] = rx.field(False)
    operator_name: rx.Field[str] = rx.field("")
    # Customer chat messages no member of staff has read: the header's Conversations badge, live.
    unread_chats: rx.Field[int] = rx.field(0)

    @rx.event
    async def load_operator(self):
        """on_load of every back-office page: who is signed in, or off to the operator sign-in."""
        try:
            operator = current_operator(self)
        except NotAuthenticated:
            await reset_page_states(self)
            return rx.redirect(f"/operator/sign-in?next={self.router.url.path or '/operator'}")
        self.operator_name, self.signed_in = operator.name, True
        with transaction() as session:
            self.unread_chats = chat.unread_total(session)
        self._watch_live(live.OPERATOR_INBOX, first=True)
        return None

    def _live_refresh(self) -> None:
        with operating(self) as (_operator, session):
            self.unread_chats = chat.unread_total(session)

    @rx.event
    async def sign_out(self):
        with transaction() as session:
            staff.sign_out(session, operator_token(self))
        await reset_page_states(self)
        return post_to("/operator/auth/sign-out")
