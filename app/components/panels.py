"""Small blocks of the billing pages: a figure under its label, and the note that a payment
method is missing."""

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
