"""The "Next payment" card: the next invoice's date, expected amount and a preview of its lines."""

from __future__ import annotations

import reflex as rx


def next_payment_card(state) -> rx.Component:
    """`state` mixes in app.state.next_payment.NextPaymentState."""
    return rx.card(
        rx.vstack(
            rx.heading("Next payment", size="4", as_="h2"),
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
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("Preview of the next invoice"),
                            rx.table.column_header_cell("Amount", justify="end"),
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            state.next_lines,
                            lambda line: rx.table.row(
                                rx.table.cell(line.description), rx.table.cell(line.amount, justify="end")
                            ),
                        )
                    ),
                    size="1",
                    width="100%",
                    id="next-payment-preview",
                ),
            ),
            rx.text(
                "Usage so far and the current seats; the amounts change with usage and plan changes until then.",
                size="1",
                color_scheme="gray",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        id="next-payment",
    )
