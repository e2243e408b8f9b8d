"""Balance History (seed 003): every ledger entry, newest first, in keyset pages; CSV export."""

from __future__ import annotations

from datetime import date

import reflex as rx

from app.components.forms import form_error
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError
from app.models import Account
from app.services import balance_history
from app.services.money import format_usd
from app.services.permissions import Permission
from app.services.timefmt import format_datetime
from app.state.session import current_actor

KIND_LABELS = {
    "all": "All kinds",
    "purchase": "Purchases",
    "auto_recharge": "Auto recharges",
    "usage": "Usage",
    "grant": "Grants",
    "invoice_applied": "Applied to invoices",
    "refund": "Refunds",
    "adjustment": "Adjustments",
    "plan_change": "Plan changes",
}
PAGE_SIZE = 25


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


class BalanceHistoryState(rx.State):
    rows: list[dict[str, str]] = []
    kind: str = "all"
    date_from: str = ""
    date_to: str = ""
    page_number: int = 1
    has_next: bool = False
    error: str = ""
    # Keyset cursors: _cursors[i] is the after_id that starts page i + 1.
    _cursors: list[int | None] = [None]
    _next_after_id: int | None = None

    def _filters(self, timezone: str) -> dict:
        return {
            "timezone": timezone,
            "sources": None if self.kind == "all" else [self.kind],
            "date_from": _parse_day(self.date_from),
            "date_to": _parse_day(self.date_to),
        }

    def _load_page(self):
        try:
            actor = current_actor(self, Permission.BILLING_VIEW)
            with transaction() as session:
                timezone = session.get(Account, actor.account_id).timezone
                result = balance_history.page(
                    session,
                    actor.account_id,
                    after_id=self._cursors[self.page_number - 1],
                    limit=PAGE_SIZE,
                    **self._filters(timezone),
                )
        except DomainError as exc:
            self.error = exc.message
            self.rows = []
            return
        self.error = ""
        self._next_after_id = result.next_after_id
        self.has_next = result.next_after_id is not None
        self.rows = [
            {
                "id": entry.public_id,
                "description": entry.description,
                "created": format_datetime(entry.created_at, timezone),
                "amount": format_usd(entry.amount_cents),
                "sign": "credit" if entry.amount_cents > 0 else "debit",
            }
            for entry in result.rows
        ]

    @rx.event
    def load(self):
        self.kind, self.date_from, self.date_to = "all", "", ""
        self.page_number, self._cursors = 1, [None]
        self._load_page()

    @rx.event
    def apply_filters(self, form_data: dict):
        kind = str(form_data.get("kind", "all"))
        self.kind = kind if kind in KIND_LABELS else "all"
        self.date_from = str(form_data.get("date_from", ""))
        self.date_to = str(form_data.get("date_to", ""))
        start, end = _parse_day(self.date_from), _parse_day(self.date_to)
        if start and end and start > end:
            self.error = "The start date must be on or before the end date."
            return
        self.page_number, self._cursors = 1, [None]
        self._load_page()

    @rx.event
    def set_kind(self, kind: str):
        self.kind = kind

    @rx.event
    def next_page(self):
        if self._next_after_id is None:
            return
        self._cursors = self._cursors[: self.page_number] + [self._next_after_id]
        self.page_number += 1
        self._load_page()

    @rx.event
    def previous_page(self):
        if self.page_number > 1:
            self.page_number -= 1
            self._load_page()

    @rx.event
    def export_csv(self):
        try:
            actor = current_actor(self, Permission.BILLING_VIEW)
            with transaction() as session:
                timezone = session.get(Account, actor.account_id).timezone
                data = balance_history.export_csv(session, actor.account_id, **self._filters(timezone))
        except DomainError as exc:
            self.error = exc.message
            return
        return rx.download(data=data, filename="balance-history.csv", mime_type="text/csv")


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row["id"], variant="ghost")),
        rx.table.cell(row["description"]),
        rx.table.cell(row["created"]),
        rx.table.cell(
            rx.text(row["amount"], color_scheme=rx.cond(row["sign"] == "credit", "green", "gray")),
            text_align="right",
        ),
    )


@console_page(
    route="/billing/balance-history",
    title="Balance History",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    order=190,
    on_load=[BalanceHistoryState.load],
)
def balance_history_page() -> rx.Component:
    return rx.vstack(
        page_heading(
            "Balance History", "Every credit and debit on your balance. Times are in your account's timezone."
        ),
        rx.form(
            rx.hstack(
                rx.vstack(
                    rx.el.label("Kind", html_for="kind", class_name="ld-label"),
                    rx.select.root(
                        rx.select.trigger(id="kind"),
                        rx.select.content(*[rx.select.item(label, value=key) for key, label in KIND_LABELS.items()]),
                        name="kind",
                        value=BalanceHistoryState.kind,
                        on_change=BalanceHistoryState.set_kind,
                    ),
                    spacing="1",
                ),
                rx.vstack(
                    rx.el.label("From", html_for="date_from", class_name="ld-label"),
                    rx.input(type="date", id="date_from", name="date_from"),
                    spacing="1",
                ),
                rx.vstack(
                    rx.el.label("To", html_for="date_to", class_name="ld-label"),
                    rx.input(type="date", id="date_to", name="date_to"),
                    spacing="1",
                ),
                rx.button("Apply filters", type="submit", variant="soft"),
                rx.spacer(),
                rx.button(
                    rx.icon("download", size=14),
                    "Export CSV",
                    type="button",
                    variant="outline",
                    on_click=BalanceHistoryState.export_csv,
                ),
                align="end",
                spacing="3",
                width="100%",
                wrap="wrap",
            ),
            on_submit=BalanceHistoryState.apply_filters,
        ),
        form_error(BalanceHistoryState.error),
        rx.cond(
            BalanceHistoryState.rows.length() > 0,
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Id"),
                        rx.table.column_header_cell("Description"),
                        rx.table.column_header_cell("Created Time"),
                        rx.table.column_header_cell("Amount (USD)", text_align="right"),
                    )
                ),
                rx.table.body(rx.foreach(BalanceHistoryState.rows, _row)),
                variant="surface",
                width="100%",
                id="balance-history-table",
            ),
            rx.callout("No balance transactions match.", icon="info", id="balance-history-empty"),
        ),
        rx.hstack(
            rx.button(
                "Previous",
                variant="soft",
                disabled=BalanceHistoryState.page_number <= 1,
                on_click=BalanceHistoryState.previous_page,
            ),
            rx.text("Page ", BalanceHistoryState.page_number, size="2"),
            rx.button(
                "Next", variant="soft", disabled=~BalanceHistoryState.has_next, on_click=BalanceHistoryState.next_page
            ),
            align="center",
            spacing="3",
        ),
        spacing="4",
        align="stretch",
    )
