"""Form building blocks: every field has a visible label tied to its input and its error below."""

from __future__ import annotations

from collections.abc import Sequence

import reflex as rx


def field(
    label: str, control: rx.Component, *, field_id: str, error: rx.Var | str = "", hint: str = ""
) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=field_id, class_name="ld-label"),
        control,
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")) if hint else rx.fragment(),
        rx.cond(error != "", rx.text(error, size="2", color_scheme="red", id=f"{field_id}-error", role="alert")),
        spacing="1",
        width="100%",
        align="stretch",
    )


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


def form_error(message: rx.Var | str) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", width="100%"),
    )


def form_notice(message: rx.Var | str) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="info", color_scheme="green", role="status", width="100%"),
    )


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
