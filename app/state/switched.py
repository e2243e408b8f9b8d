"""A settings form turned on and off by a switch (Spend Management, Auto Recharge), mixed into
its page's state and drawn with `app.components.switched`. The switch is the one controlled
control (it enables the amounts); the amounts are uncontrolled inputs that start from the saved
values and are read from the submitted form."""

from __future__ import annotations

import reflex as rx

from app.state.form import FormState


class SwitchedFormState(FormState, mixin=True):
    enabled: rx.Field[bool] = rx.field(False)
    can_manage: rx.Field[bool] = rx.field(False)

    @rx.event
    def set_enabled(self, value: bool):
        self.enabled = value

    def _submitted(self, form_data: dict, saved: dict[str, str]) -> dict[str, str]:
        """The submitted values of the `saved` fields; a disabled input (switched off) is not
        submitted, so it keeps the value it shows."""
        return {name: str(form_data.get(name, value)) for name, value in saved.items()}
