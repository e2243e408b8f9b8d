"""The button row of the console's confirmation dialogs."""

from __future__ import annotations

import reflex as rx


def dialog_actions(confirm: rx.Component, busy: rx.Var, **props) -> rx.Component:
    """Cancel (closes the dialog, disabled while `busy`) and the dialog's own action, right-aligned."""
    return rx.flex(
        rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray", disabled=busy)),
        confirm,
        spacing="3",
        justify="end",
        width="100%",
        **props,
    )
