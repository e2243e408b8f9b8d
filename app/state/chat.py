"""The chat box at the bottom right of every console page (app.services.chat): the launcher's
unread badge, the conversation when it is open, and sending. Live: a message from the operator's
staff shows at once, read when the box is open, counted on the badge when it is not.

Its handlers check info.view and then open a transaction themselves rather than through `acting`:
a suspended account's console is read-only, but the chat is how its users reach the staff."""

from __future__ import annotations

import reflex as rx

from app.db import transaction
from app.services import chat, live
from app.services.chat import ChatLine
from app.services.permissions import Permission
from app.state.form import FormState, texts
from app.state.live import LiveState
from app.state.session import current_actor


class ChatState(FormState, LiveState, rx.State):
    showing: rx.Field[bool] = rx.field(False)
    unread: rx.Field[int] = rx.field(0)
    lines: rx.Field[list[ChatLine]] = rx.field(default_factory=list)

    def _read(self) -> None:
        """The badge, or the conversation (read) when the box is open."""
        actor = current_actor(self, Permission.INFO_VIEW)
        with transaction() as session:
            if self.showing:
                view = chat.read(session, actor)
                self.lines, self.unread = view.lines, view.unread
            else:
                self.unread = chat.unread(session, actor)

    @rx.event
    def load(self):
        """On every console page, after the banner: the badge, and this tab's chat told live."""
        self.showing = False
        with self._attempt():
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                self.unread = chat.unread(session, actor)
            self._watch_live(actor.account_id, topic=live.chat_topic(actor.account_id))

    @rx.event
    def open_change(self, showing: bool):
        self.showing = showing
        if showing:
            with self._attempt():
                self._read()

    @rx.event
    def send(self, form: dict):
        with self._attempt("send", field="body"):
            (body,) = texts(form, "body")
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                view = chat.send(session, actor, body)
            self.lines, self.unread = view.lines, view.unread
            self._remount_form()

    def _live_refresh(self) -> None:
        self._read()
