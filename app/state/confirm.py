"""The one confirmation dialog of a page, mixed into its state and drawn by
`app.components.dialogs.confirm_dialog`: what is asked (`confirm_action` on `confirm_target`,
"" when closed), the lines shown, the button, and the error of a refused confirmation.

    @rx.event
    def ask_remove(self, user_id: str):
        self._ask("remove", target=user_id, title="Remove user", lines=[...], button="Remove")

    @rx.event
    def confirm(self):
        with self._confirming():
            yield
            with acting(self, Permission.TEAM_MANAGE) as (actor, session):
                ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import reflex as rx

from app.errors import DomainError


class ConfirmState(rx.State, mixin=True):
    confirm_action: rx.Field[str] = rx.field("")
    confirm_target: rx.Field[str] = rx.field("")
    confirm_title: rx.Field[str] = rx.field("")
    confirm_lines: rx.Field[list[str]] = rx.field(default_factory=list)
    confirm_button: rx.Field[str] = rx.field("Confirm")
    confirm_error: rx.Field[str] = rx.field("")
    confirming: rx.Field[bool] = rx.field(False)
    # The dialog steps aside while a card payment's 3-D Secure step is on screen (a modal dialog
    # leaves the rest of the page, that step too, unclickable); it comes back with a refusal.
    confirm_hidden: rx.Field[bool] = rx.field(False)

    def _ask(self, action: str, *, title: str, lines: list[str], target: str = "", button: str = "Confirm") -> None:
        self.confirm_action, self.confirm_target = action, target
        self.confirm_title, self.confirm_lines, self.confirm_button = title, lines, button
        self.confirm_error, self.confirming, self.confirm_hidden = "", False, False

    def _close_confirm(self) -> None:
        self.confirm_action = self.confirm_target = self.confirm_title = self.confirm_error = ""
        self.confirm_lines, self.confirm_button, self.confirming, self.confirm_hidden = [], "Confirm", False, False

    @contextmanager
    def _confirming(self) -> Iterator[None]:
        """Busy while the block runs; a DomainError stays in the dialog, success closes it."""
        self.confirm_error, self.confirming = "", True
        try:
            yield
        except DomainError as exc:
            self.confirm_error, self.confirming = exc.message, False
        else:
            self._close_confirm()

    @rx.event
    def confirm_open_change(self, is_open: bool):
        if not is_open and not self.confirming:
            self._close_confirm()
