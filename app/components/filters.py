"""The filters above a list (e.g. the Audit Log): labelled selects and days in one row, applied
together by "Apply filters" and submitted by name to the state's handler."""

from __future__ import annotations

import reflex as rx

from app.components.forms import field


def filter_select(
    label: str, name: str, items: list[rx.Component], *, default_value: str | rx.Var[str]
) -> rx.Component:
    """A select of `items` (rx.select.item, or an rx.foreach of them)."""
    trigger = rx.select.trigger(id=name)
    control = rx.select.root(trigger, rx.select.content(*items), name=name, default_value=default_value)
    return _filter(label, name, control)


def day_filter(label: str, name: str, *, default_value: str | rx.Var[str] = "") -> rx.Component:
    return _filter(label, name, rx.input(type="date", id=name, name=name, default_value=default_value))


def filter_form(
    *filters: rx.Component, on_submit, trailing: rx.Component | None = None, key: rx.Var[str] | str = ""
) -> rx.Component:
    """The row of `filters` and its "Apply filters" button; `trailing` (e.g. an export) sits at the
    row's right end. A new `key` remounts the controls, showing new default values."""
    end = [rx.spacer(), trailing] if trailing is not None else []
    return rx.form(
        rx.hstack(
            *filters,
            rx.button("Apply filters", type="submit", variant="soft"),
            *end,
            align="end",
            spacing="3",
            width="100%",
            wrap="wrap",
        ),
        on_submit=on_submit,
        key=key,
    )


def _filter(label: str, name: str, control: rx.Component) -> rx.Component:
    return field(label, control, field_id=name, width="auto", align="start")
