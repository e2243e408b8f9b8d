"""Balance History (seed 003): every ledger entry, newest first, in keyset pages; CSV export."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import reflex as rx

from app.components.filters import day_filter, filter_form, filter_select
from app.components.forms import form_error
from app.components.layout import console_page
from app.components.tables import data_table, pager, rows_or_empty
from app.services import balance_history
from app.services.balance_history import EntryRow
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.live import LiveState
from app.state.paging import PagedState
from app.state.session import acting

KIND_LABELS = {
    "all": "All kinds",
    "purchase": "Purchases",
    "auto_recharge": "Auto recharges",
    "usage": "Usage",
    "grant": "Grants",
    "invoice_applied": "Applied to invoices",
    "refund": "Refunds",
    "dispute": "Disputes",
    "adjustment": "Adjustments",
    "plan_change": "Plan changes",
    "expired": "Expired credits",
}
PAGE_SIZE = 25
ROUTE = "/billing/balance-history"


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


class BalanceHistoryState(FormState, PagedState, LiveState, rx.State):
    """The URL holds the filters and the page (kind, from, to, page, after: the entry the page
    starts after), so a reload or Back shows the same rows; every change navigates."""

    rows: rx.Field[list[EntryRow]] = rx.field(default_factory=list)
    kind: rx.Field[str] = rx.field("all")
    date_from: rx.Field[str] = rx.field("")
    date_to: rx.Field[str] = rx.field("")
    _after: str = ""
    _next_after: str = ""
    # Entries the filters show that arrived since the first page was read ("N new entries").
    new_entries: rx.Field[int] = rx.field(0)
    _seen_id: int = 0

    def _filters(self) -> dict[str, str]:
        return {"kind": self.kind, "date_from": self.date_from, "date_to": self.date_to}

    def _url(self, page_number: int = 1, after: str = "") -> str:
        query = {"kind": self.kind, "from": self.date_from, "to": self.date_to}
        if page_number > 1 and after:
            query |= {"page": str(page_number), "after": after}
        shown = {name: value for name, value in query.items() if value and value != "all"}
        return ROUTE + (f"?{urlencode(shown)}" if shown else "")

    def _refresh(self) -> None:
        self.rows = []
        with self._attempt(), acting(self, Permission.BILLING_VIEW, reporting=True) as (actor, session):
            page = balance_history.history_page(
                session, actor, after_id=self._after, limit=PAGE_SIZE, **self._filters()
            )
            self.rows, self._next_after = page.rows, page.next_after
            self.has_next = page.next_after != ""
            if not self._after:
                self._seen_id = balance_history.newest_id(session, actor, **self._filters())
                self.new_entries = 0
            self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        # The primary: a push follows a change the replica may not have yet.
        with acting(self, Permission.BILLING_VIEW) as (actor, session):
            self.new_entries = balance_history.count_newer(session, actor, self._seen_id, **self._filters())

    @rx.event
    def show_new_entries(self):
        """The first page again, with the same filters."""
        if self._after:
            return rx.redirect(self._url())
        self._refresh()
        return None

    @rx.event
    def load(self):
        query = self.router.url.query_parameters
        kind = str(query.get("kind", "all"))
        self.kind = kind if kind in KIND_LABELS else "all"
        self.date_from = str(query.get("from", "")) if _parse_day(str(query.get("from", ""))) else ""
        self.date_to = str(query.get("to", "")) if _parse_day(str(query.get("to", ""))) else ""
        self._after = str(query.get("after", ""))
        page_text = str(query.get("page", "1"))
        self.page_number = int(page_text) if page_text.isdigit() and self._after else 1
        self._refresh()

    @rx.event
    def apply_filters(self, form_data: dict):
        kind = str(form_data.get("kind", "all"))
        self.kind = kind if kind in KIND_LABELS else "all"
        self.date_from = str(form_data.get("date_from", ""))
        self.date_to = str(form_data.get("date_to", ""))
        start, end = _parse_day(self.date_from), _parse_day(self.date_to)
        if start and end and start > end:
            self.error = "The start date must be on or before the end date."
            return None
        return rx.redirect(self._url())

    @rx.event
    def next_page(self):
        if self.has_next:
            return rx.redirect(self._url(self.page_number + 1, self._next_after))
        return None

    @rx.event
    def previous_page(self):
        if self.page_number <= 1:
            return None
        with self._attempt(), acting(self, Permission.BILLING_VIEW, reporting=True) as (actor, session):
            after = balance_history.previous_after(
                session, actor, after_id=self._after, limit=PAGE_SIZE, **self._filters()
            )
            return rx.redirect(self._url(self.page_number - 1, after))
        return None

    @rx.event
    def export_csv(self):
        with self._attempt(), acting(self, Permission.BILLING_VIEW, reporting=True) as (actor, session):
            data = balance_history.history_csv(session, actor, **self._filters())
            return rx.download(data=data, filename="balance-history.csv", mime_type="text/csv")


def _row(row: EntryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row.id, variant="ghost")),
        rx.table.cell(row.description),
        rx.table.cell(row.created),
        rx.table.cell(
            rx.text(row.amount, color_scheme=rx.cond(row.sign == "credit", "green", "gray")),
            text_align="right",
        ),
    )


@console_page(
    ROUTE,
    "Every credit and debit on your balance. Times are in your account's timezone.",
    on_load=[BalanceHistoryState.load],
)
def balance_history_page() -> list[rx.Component]:
    return [
        filter_form(
            filter_select(
                "Kind",
                "kind",
                [rx.select.item(label, value=key) for key, label in KIND_LABELS.items()],
                default_value=BalanceHistoryState.kind,
            ),
            day_filter("From", "date_from", default_value=BalanceHistoryState.date_from),
            day_filter("To", "date_to", default_value=BalanceHistoryState.date_to),
            on_submit=BalanceHistoryState.apply_filters,
            # Remounted when the URL's filters are loaded, so the controls show them.
            key=BalanceHistoryState.kind + BalanceHistoryState.date_from + BalanceHistoryState.date_to,
            trailing=rx.button(
                rx.icon("download", size=14),
                "Export CSV",
                type="button",
                variant="outline",
                on_click=BalanceHistoryState.export_csv,
            ),
        ),
        form_error(BalanceHistoryState.error),
        rx.cond(
            BalanceHistoryState.new_entries > 0,
            rx.button(
                rx.icon("arrow-up", size=14),
                rx.cond(
                    BalanceHistoryState.new_entries > balance_history.NEWER_CAP,
                    f"{balance_history.NEWER_CAP}+ new entries",
                    rx.cond(
                        BalanceHistoryState.new_entries == 1,
                        "1 new entry",
                        BalanceHistoryState.new_entries.to_string() + " new entries",
                    ),
                ),
                variant="soft",
                on_click=BalanceHistoryState.show_new_entries,
                id="new-entries",
            ),
        ),
        rows_or_empty(
            BalanceHistoryState.rows,
            data_table(
                "balance-history-table",
                ["Id", "Description", "Created Time", "Amount (USD)"],
                BalanceHistoryState.rows,
                _row,
                right_aligned=("Amount (USD)",),
                actions=False,
            ),
            "No balance transactions match.",
            empty_id="balance-history-empty",
        ),
        pager(BalanceHistoryState),
    ]
