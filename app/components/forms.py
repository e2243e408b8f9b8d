"""Form building blocks: every field has a visible label tied to its input and its error below."""

from __future__ import annotations

import json
from collections.abc import Sequence

import reflex as rx
from reflex.event import EventSpec


def field(
    label: str, control: rx.Component, *, field_id: str, error: rx.Var | str = "", hint: str = "", **props
) -> rx.Component:
    """`label`, `control`, `hint` and `error` stacked; `props` override the stack's full width
    (e.g. for a filter in a row)."""
    return rx.vstack(
        rx.el.label(label, html_for=field_id, class_name="ld-label"),
        control,
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")) if hint else rx.fragment(),
        field_error(error, f"{field_id}-error"),
        **{"spacing": "1", "width": "100%", "align": "stretch", **props},
    )


def field_error(message: rx.Var | str, error_id: str) -> rx.Component:
    """The error of one field (or group of fields), announced when it appears."""
    return rx.cond(message != "", rx.text(message, size="2", color_scheme="red", id=error_id, role="alert"))


def text_field(
    label: str,
    *,
    field_id: str,
    name: str | None = None,
    type: str = "text",
    error: rx.Var | str = "",
    hint: str = "",
    **props,
) -> rx.Component:
    return field(
        label,
        rx.input(id=field_id, name=name or field_id, type=type, width="100%", **props),
        field_id=field_id,
        error=error,
        hint=hint,
    )


def error_of(state, name: str) -> rx.Var:
    """The error shown under field `name` of a page state that mixes in `FormState`."""
    return state.errors.get(name, "")


def form_error(message: rx.Var | str, **props) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", width="100%", **props),
    )


def form_notice(message: rx.Var | str, **props) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="info", color_scheme="green", role="status", width="100%", **props),
    )


def _into_view(element_id: str) -> EventSpec:
    """Scroll the element into view when it is out of it; nothing when it is already seen."""
    return rx.call_script(f"document.getElementById({json.dumps(element_id)})?.scrollIntoView({{block: 'nearest'}})")


def form_messages(state) -> rx.Component:
    """The notice and the page-level error of a state that mixes in `FormState`, brought into view
    where the user is when they appear: the result of a plan change or a refusal shown at the top
    of a long page is not missed. Each new message (or the same one from a new attempt) is keyed
    anew, so its callout mounts again and scrolls."""
    shown = {}
    for kind, message in (("notice", state.notice), ("error", state.error)):
        element_id = f"{state.__name__.lower()}-{kind}"
        shown[kind] = {
            "id": element_id,
            "key": message + "#" + state.message_seq.to_string(),
            "on_mount": _into_view(element_id),
        }
    return rx.fragment(form_notice(state.notice, **shown["notice"]), form_error(state.error, **shown["error"]))


def save_or_read_only(state, label: str, read_only: str) -> rx.Component:
    """A settings form's submit button (busy while `state` saves) when the role may change the
    settings (`state.can_manage`), else the sentence `read_only` saying it cannot."""
    return rx.cond(
        state.can_manage,
        rx.button(label, type="submit", loading=state.busy == "save", size="3", align_self="start"),
        rx.text(read_only, size="2", color_scheme="gray"),
    )


def settings_form(state, *children: rx.Component, **props) -> rx.Component:
    """A settings form submitted to `state.save`; its inputs start again from the saved values
    when the state remounts it (`FormState._remount_form`)."""
    return state_form(state, rx.vstack(*children, spacing="4", align="stretch"), on_submit=state.save, **props)


def new_password_fields(label: str, repeat_label: str, *, error: rx.Var | str) -> rx.Component:
    """A new password and its repetition, with the rules stated under the first."""
    return rx.fragment(
        text_field(
            label,
            field_id="password",
            type="password",
            auto_complete="new-password",
            error=error,
            hint="At least 10 characters, not containing your email.",
        ),
        text_field(repeat_label, field_id="confirm", type="password", auto_complete="new-password"),
    )


SELECT_STYLE = {
    "height": "var(--space-6)",
    "padding": "0 var(--space-2)",
    "border": "1px solid var(--gray-a7)",
    "border_radius": "var(--radius-2)",
    "background": "var(--color-surface)",
    "color": "var(--gray-12)",
    "font_size": "var(--font-size-2)",
    "width": "100%",
}


def select(
    name: str, options: Sequence[tuple[str, str]], *, default_value: rx.Var | str = "", empty: str = "", **props
) -> rx.Component:
    """A native, uncontrolled select of (value, label) options submitted as `name`; `empty` is the
    label of a first option of no value."""
    return rx.el.select(
        *([rx.el.option(empty, value="")] if empty else []),
        *[rx.el.option(label, value=value) for value, label in options],
        id=name,
        name=name,
        default_value=default_value,
        style=SELECT_STYLE,
        **props,
    )


def state_form(state, *children: rx.Component, on_submit, **props) -> rx.Component:
    """A form of uncontrolled inputs for a state mixing in `FormState`: it keeps what was typed
    when a submit is refused, and starts again from the state's values when the state calls
    `_remount_form`."""
    return rx.form(*children, on_submit=on_submit, key=state.form_key, **props)


def with_submit(control: rx.Component, label: str, *, loading: rx.Var | bool) -> rx.Component:
    """A field with its form's submit button at its right, level with the input."""
    return rx.hstack(
        control,
        rx.button(label, type="submit", loading=loading, margin_top="1.6em"),
        align="start",
        spacing="3",
        width="100%",
    )


def field_pair(*fields: rx.Component) -> rx.Component:
    """Two fields side by side, one above the other on a narrow screen."""
    return rx.grid(*fields, columns=rx.breakpoints(initial="1", sm="2"), spacing="4", width="100%")


def request_key_input(state) -> rx.Component:
    """The key of the payment a form makes (`app.state.card_payment`), sent with every submit:
    a second click on the same form finds the first payment instead of charging again."""
    return rx.el.input(type="hidden", name="request_key", value=state.request_key)
