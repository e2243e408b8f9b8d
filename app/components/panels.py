"""Small blocks of the billing pages: a figure under its label, the choice of a saved payment
method, and the note that one is missing."""

from __future__ import annotations

import reflex as rx


def stat(label: str, value: rx.Component | rx.Var | str, stat_id: str = "", *, size: str = "") -> rx.Component:
    """A figure in bold under its label in gray; `value` may be a component of its own (a badge)."""
    if not isinstance(value, rx.Component):
        props = {"size": size} if size else {}
        value = rx.text(value, weight="bold", id=stat_id, **props)
    return rx.vstack(rx.text(label, size="2", color_scheme="gray"), value, spacing="1")


def no_payment_method(message: str, payment_methods_path: str) -> rx.Component:
    """Why something needs a payment method on file, with the way to add one."""
    return rx.callout(
        rx.text(
            message,
            rx.link("Go to Payment Methods", href=payment_methods_path, id="payment-methods-link"),
        ),
        icon="credit_card",
        color_scheme="amber",
        id="no-card",
        width="100%",
    )


def payment_method_select(
    methods: rx.Var, value: rx.Var, on_change, *, select_id: str, placeholder: str, extra: tuple = ()
) -> rx.Component:
    """The choice of one of the saved `methods` (MethodView rows) by id, then the `extra` items."""
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, id=select_id, width="100%"),
        rx.select.content(rx.foreach(methods, lambda m: rx.select.item(m.description, value=m.id)), *extra),
        value=value,
        on_change=on_change,
    )
