"""The state behind `app.components.dialogs.change_confirmation`, mixed into the Plans and
Discover Products states: what the dialog shows, whether it is busy, and how it opens and closes.
Each page keeps its own `confirm` handler and what is being confirmed."""

from __future__ import annotations

import reflex as rx


class ChangeConfirmationState(rx.State, mixin=True):
    dialog_open: bool = False
    confirm_title: str = ""
    confirm_lines: list[str] = []
    confirm_error: str = ""
    card_required: bool = False
    confirming: bool = False

    def _open_confirmation(self, title: str, lines: list[str], *, card_required: bool = False) -> None:
        self.confirm_title, self.confirm_lines, self.confirm_error = title, lines, ""
        self.card_required, self.confirming, self.dialog_open = card_required, False, True

    def _close_confirmation(self) -> None:
        self.dialog_open = self.card_required = self.confirming = False
        self.confirm_title = self.confirm_error = ""
        self.confirm_lines = []

    @rx.event
    def dialog_open_change(self, is_open: bool):
        if not is_open and not self.confirming:
            self._close_confirmation()
