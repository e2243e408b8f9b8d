"""The "Next payment" card: the next invoice's date, expected amount and a preview of its lines."""

from __future__ import annotations

import reflex as rx

from app.components.layout import section_card
from app.components.tables import data_table
from app.state.next_payment import PreviewLine


def _preview_line(line: PreviewLine) -> rx.Component:
    return rx.table.row(rx.table.cell(line.description), rx.table.cell(line.amount, text_align="right"))


def next_payment_card(state) -> rx.Component:
    """`state` mixes in app.state.next_payment.NextPaymentState."""
    return section_card(
        "Next payment",
        rx.cond(
            state.next_nothing_due,
            rx.text("Nothing due on ", state.next_issued_on, ".", id="next-payment-nothing-due"),
            rx.vstack(
                rx.hstack(
                    rx.text("Expected on ", state.next_issued_on),
                    rx.spacer(),
                    rx.text(state.next_total, weight="bold", size="5", id="next-payment-total"),
                    width="100%",
                    align="center",
                ),
                rx.text(state.next_how_paid, size="2", color_scheme="gray"),
                spacing="1",
                width="100%",
            ),
        ),
        rx.cond(
            state.next_lines.length() > 0,
            data_table(
                "next-payment-preview",
                ["Preview of the next invoice", "Amount"],
                state.next_lines,
                _preview_line,
                right_aligned=("Amount",),
                actions=False,
                variant="ghost",
                size="1",
            ),
        ),
        rx.text(
            "Usage so far and the current seats; the amounts change with usage and plan changes until then.",
            size="1",
            color_scheme="gray",
        ),
        width="100%",
        id="next-payment",
    )
