"""Usage: credits used per day of a range (the last 7, 30 or 90 days, or custom days), broken down
by API key or by description (the top ten and "Other"), as a stacked chart and tables; CSV export.
The figures are app.services.usage's (the daily rollup plus the ledger's newest entries)."""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx
from reflex.vars import ObjectVar

from app.components.filters import filter_form, filter_select
from app.components.forms import error_of, field, form_error
from app.components.layout import console_page
from app.components.tables import data_table
from app.services import usage
from app.services.permissions import Permission
from app.services.usage import DayRow, SeriesRow
from app.state.form import FormState
from app.state.session import acting

ROUTE = "/billing/usage"
RANGE_LABELS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "custom": "Custom dates"}
BY_LABELS = {"key": "API key", "description": "Description"}


class UsageState(FormState, rx.State):
    """The URL holds the range and the breakdown (range, from, to, by), so a reload or Back shows
    the same figures; applying the filters navigates."""

    preset: rx.Field[str] = rx.field("30")
    date_from: rx.Field[str] = rx.field("")
    date_to: rx.Field[str] = rx.field("")
    by: rx.Field[str] = rx.field("key")
    loading: rx.Field[bool] = rx.field(True)
    series: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    chart: rx.Field[list[dict]] = rx.field(default_factory=list)
    rows: rx.Field[list[SeriesRow]] = rx.field(default_factory=list)
    days: rx.Field[list[DayRow]] = rx.field(default_factory=list)
    total_amount: rx.Field[str] = rx.field("")
    total_calls: rx.Field[str] = rx.field("")
    shown_range: rx.Field[str] = rx.field("")

    def _filters(self) -> dict[str, str]:
        return {"preset": self.preset, "date_from": self.date_from, "date_to": self.date_to}

    def _url(self) -> str:
        query = {"range": self.preset, "by": self.by}
        if self.preset == "custom":
            query |= {"from": self.date_from, "to": self.date_to}
        return f"{ROUTE}?{urlencode(query)}"

    @rx.event
    def load(self):
        query = self.router.url.query_parameters
        preset = str(query.get("range", "30"))
        self.preset = preset if preset in RANGE_LABELS else "30"
        by = str(query.get("by", "key"))
        self.by = by if by in BY_LABELS else "key"
        self.date_from, self.date_to = str(query.get("from", "")), str(query.get("to", ""))
        self.loading = True
        yield
        self.series, self.chart, self.rows, self.days, self.shown_range = [], [], [], [], ""
        with self._attempt(), acting(self, Permission.BILLING_VIEW, reporting=True) as (actor, session):
            view = usage.usage_view(session, actor, by=self.by, **self._filters())
            self.series, self.chart, self.rows, self.days = view.series, view.chart, view.rows, view.days
            self.total_amount, self.total_calls = view.total_amount, view.total_calls
            self.shown_range = f"{view.first} to {view.last}, days in {view.timezone}"
        self.loading = False

    @rx.event
    def apply_filters(self, form_data: dict):
        preset = str(form_data.get("range", "30"))
        self.preset = preset if preset in RANGE_LABELS else "30"
        by = str(form_data.get("by", "key"))
        self.by = by if by in BY_LABELS else "key"
        self.date_from, self.date_to = str(form_data.get("date_from", "")), str(form_data.get("date_to", ""))
        return rx.redirect(self._url())

    @rx.event
    def export_csv(self):
        with self._attempt("export"), acting(self, Permission.BILLING_VIEW, reporting=True) as (actor, session):
            data = usage.usage_csv(session, actor, **self._filters())
            return rx.download(data=data, filename="usage.csv", mime_type="text/csv")


def _series_row(row: SeriesRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.name),
        rx.table.cell(row.calls, text_align="right"),
        rx.table.cell(row.amount, text_align="right"),
        rx.table.cell(row.share, text_align="right"),
    )


def _day_row(row: DayRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.day),
        rx.table.cell(row.calls, text_align="right"),
        rx.table.cell(row.amount, text_align="right"),
    )


def _date_field(label: str, name: str, value: rx.Var[str]) -> rx.Component:
    control = rx.input(type="date", id=name, name=name, default_value=value)
    return field(label, control, field_id=name, error=error_of(UsageState, name), width="auto", align="start")


def _bar(series: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.recharts.bar(data_key=series["key"], name=series["name"], fill=series["color"], stack_id="usage")


def _figures() -> rx.Component:
    return rx.vstack(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading("Credits used per day", size="3", as_="h2"),
                    rx.spacer(),
                    rx.text(UsageState.total_amount, " · ", UsageState.total_calls, " calls", id="usage-total"),
                    width="100%",
                    wrap="wrap",
                ),
                rx.box(
                    rx.recharts.bar_chart(
                        rx.foreach(UsageState.series, _bar),
                        rx.recharts.x_axis(data_key="day"),
                        rx.recharts.y_axis(),
                        rx.recharts.graphing_tooltip(),
                        rx.recharts.legend(),
                        data=UsageState.chart,
                        height=280,
                        width="100%",
                    ),
                    id="usage-chart",
                    width="100%",
                ),
                width="100%",
            ),
            width="100%",
        ),
        data_table(
            "usage-breakdown-table",
            ["Name", "Calls", "Credits used", "Share"],
            UsageState.rows,
            _series_row,
            right_aligned=("Calls", "Credits used", "Share"),
            actions=False,
        ),
        data_table(
            "usage-days-table",
            ["Day", "Calls", "Credits used"],
            UsageState.days,
            _day_row,
            right_aligned=("Calls", "Credits used"),
            actions=False,
        ),
        spacing="4",
        width="100%",
    )


@console_page(
    ROUTE,
    "Credits used by your API calls per day, by API key or by description. Days are in your account's timezone.",
    on_load=[UsageState.load],
)
def usage_page() -> list[rx.Component]:
    return [
        filter_form(
            filter_select(
                "Range",
                "range",
                [rx.select.item(label, value=key) for key, label in RANGE_LABELS.items()],
                default_value=UsageState.preset,
            ),
            _date_field("From", "date_from", UsageState.date_from),
            _date_field("To", "date_to", UsageState.date_to),
            filter_select(
                "Break down by",
                "by",
                [rx.select.item(label, value=key) for key, label in BY_LABELS.items()],
                default_value=UsageState.by,
            ),
            on_submit=UsageState.apply_filters,
            # Remounted when the URL's filters are loaded, so the controls show them.
            key=UsageState.preset + UsageState.date_from + UsageState.date_to + UsageState.by,
            trailing=rx.button(
                rx.icon("download", size=14),
                "Export CSV",
                type="button",
                variant="outline",
                on_click=UsageState.export_csv,
                loading=UsageState.busy == "export",
            ),
        ),
        rx.text("Custom dates apply when the range is “Custom dates”.", size="1", color_scheme="gray"),
        form_error(UsageState.error),
        rx.text(UsageState.shown_range, size="2", color_scheme="gray", id="usage-range"),
        rx.cond(
            UsageState.loading,
            rx.hstack(rx.spinner(), rx.text("Loading usage…"), id="usage-loading", align="center"),
            # No range shown: it was refused, and the error is next to its date.
            rx.cond(
                UsageState.shown_range == "",
                rx.fragment(),
                rx.cond(
                    UsageState.rows.length() > 0,
                    _figures(),
                    rx.callout("No usage in this range.", icon="info", id="usage-empty"),
                ),
            ),
        ),
    ]
