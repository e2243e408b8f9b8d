"""The "Next payment" figures, mixed into the Overview's and the Plan page's states and drawn by
`app.components.next_payment.next_payment_card`."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.services.upcoming import NextPayment


@dataclass
class PreviewLine:
    description: str = ""
    amount: str = ""


class NextPaymentState(rx.State, mixin=True):
    next_issued_on: rx.Field[str] = rx.field("")
    next_total: rx.Field[str] = rx.field("")
    next_nothing_due: rx.Field[bool] = rx.field(True)
    next_how_paid: rx.Field[str] = rx.field("")
    next_lines: rx.Field[list[PreviewLine]] = rx.field(default_factory=list)

    def _show_next_payment(self, payment: NextPayment) -> None:
        self.next_issued_on, self.next_total = payment.issued_on, payment.total
        self.next_nothing_due, self.next_how_paid = payment.nothing_due, payment.how_paid
        self.next_lines = [PreviewLine(line.description, line.amount) for line in payment.lines]
