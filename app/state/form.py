"""The one shape of a console page's forms, mixed into its state: field errors by name, one
page-level error and notice, which action is in flight, and one way to show a DomainError.

    @rx.event
    def save(self, form_data: dict):
        with self._attempt("save"):
            with acting(self, Permission.BILLING_MANAGE) as (actor, session):
                spend.save_settings(session, actor, **form_data)
            self.notice = "Saved."

Inputs are uncontrolled: a handler reads the submitted `form_data`, so a page needs no setter
per field. The component side is `app.components.forms` (`field_error(State, "name")`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import reflex as rx

from app.errors import DomainError, FormInvalid


class FormState(rx.State, mixin=True):
    errors: rx.Field[dict[str, str]] = rx.field(default_factory=dict)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    # The action in flight ("save", "delete", …), "" when none: buttons show it as loading.
    busy: rx.Field[str] = rx.field("")
    # The key of the page's form: bumped by `_remount_form` so that uncontrolled inputs start
    # again from the values just loaded (after a save normalized them, say).
    form_key: rx.Field[int] = rx.field(0)
    # Counts the attempts: a message shown again by a new attempt is a new message, which
    # `form_messages` brings into view again.
    message_seq: rx.Field[int] = rx.field(0)

    def _clear_messages(self) -> None:
        self.errors, self.error, self.notice = {}, "", ""
        self.message_seq += 1

    def _remount_form(self) -> None:
        self.form_key += 1

    def _show_error(self, exc: DomainError, *, field: str | None = None) -> None:
        """Field errors next to their fields; an error of no field at `field`, else at the top."""
        key = exc.field or field
        if isinstance(exc, FormInvalid):
            self.errors = dict(exc.errors)
        elif key:
            self.errors = {**self.errors, key: exc.message}
        else:
            self.error = exc.message

    @contextmanager
    def _attempt(self, action: str = "", *, field: str | None = None) -> Iterator[None]:
        """Clear the messages, mark `action` busy, and show a DomainError raised in the block
        (the rest of the block is skipped, so a notice set at its end means it succeeded)."""
        self._clear_messages()
        self.busy = action
        try:
            yield
        except DomainError as exc:
            self._show_error(exc, field=field)
        finally:
            self.busy = ""


def texts(form: dict, *names: str) -> list[str]:
    """The submitted text of each named field of `form`, "" for one that is absent."""
    return [str(form.get(name) or "") for name in names]
