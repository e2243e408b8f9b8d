"""The controls of a settings form turned on and off by a switch; `state` mixes in
`app.state.switched.SwitchedFormState`."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, field


def form_switch(state, label: str, *, switch_id: str, disabled: rx.Var | bool = False) -> rx.Component:
    """The switch and its label; it is submitted as `enabled`."""
    return rx.hstack(
        rx.switch(
            id=switch_id,
            name="enabled",
            checked=state.enabled,
            on_change=state.set_enabled,
            disabled=~state.can_manage | disabled,
        ),
        rx.el.label(label, html_for=switch_id, class_name="ld-label"),
        align="center",
        spacing="3",
    )


def switched_input(state, name: str, saved: rx.Var | str, **props) -> rx.Component:
    """An uncontrolled input that starts from the `saved` value (and starts again from it when the
    state remounts its `settings_form`), disabled while the switch is off or the role cannot manage."""
    return rx.input(
        id=name,
        name=name,
        default_value=saved,
        disabled=~state.enabled | ~state.can_manage,
        width="100%",
        **props,
    )


def switched_field(state, label: str, name: str, saved: rx.Var | str, *, hint: str, **props) -> rx.Component:
    """A `switched_input` with its label, hint and error."""
    return field(
        label, switched_input(state, name, saved, **props), field_id=name, error=error_of(state, name), hint=hint
    )
