"""Audit Log: every change made on the administration and billing pages, who made it and when,
newest first; owners filter it by category, user and dates (days of the account's timezone)."""

from __future__ import annotations

import reflex as rx

from app.components.filters import day_filter, filter_form, filter_select
from app.components.forms import error_of, form_error
from app.components.layout import console_page
from app.components.tables import data_table, pager, rows_or_empty
from app.services import audit
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.paging import KeysetPagedState
from app.state.session import acting

EVERYTHING = "all"


class AuditLogState(FormState, KeysetPagedState, rx.State):
    rows: rx.Field[list[audit.AuditRow]] = rx.field(default_factory=list)
    people: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    category: rx.Field[str] = rx.field(EVERYTHING)
    person: rx.Field[str] = rx.field(EVERYTHING)
    day_from: rx.Field[str] = rx.field("")
    day_to: rx.Field[str] = rx.field("")

    def _refresh(self) -> None:
        self.rows, self.has_next = [], False
        with self._attempt(), acting(self, Permission.AUDIT_VIEW, reporting=True) as (actor, session):
            page = audit.events(
                session,
                actor,
                category="" if self.category == EVERYTHING else self.category,
                user_email="" if self.person == EVERYTHING else self.person,
                day_from=self.day_from,
                day_to=self.day_to,
                before_id=self._cursor(),
            )
            self.people = [[email, name] for email, name in audit.people(session, actor)]
            self.rows = page.rows
            self._loaded(page.next_before_id)

    @rx.event
    def load(self):
        self.category = self.person = EVERYTHING
        self.day_from = self.day_to = ""
        self._first_page()
        self._refresh()

    @rx.event
    def apply_filters(self, form: dict):
        self.category = str(form.get("category") or EVERYTHING)
        self.person = str(form.get("person") or EVERYTHING)
        self.day_from = str(form.get("day_from", ""))
        self.day_to = str(form.get("day_to", ""))
        self._first_page()
        self._refresh()


def _row(row: audit.AuditRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.when, white_space="nowrap"),
        rx.table.cell(row.who),
        rx.table.cell(rx.badge(row.category, variant="soft", color_scheme="gray")),
        rx.table.cell(row.summary),
    )


@console_page(
    "/audit-log",
    "Every change to the account, who made it and when. Times are in your account's timezone.",
    on_load=[AuditLogState.load],
)
def audit_log_page() -> list[rx.Component]:
    state = AuditLogState
    return [
        filter_form(
            filter_select(
                "Category",
                "category",
                [rx.select.item("All categories", value=EVERYTHING)]
                + [rx.select.item(label, value=key) for key, label in audit.CATEGORIES.items()],
                default_value=EVERYTHING,
            ),
            filter_select(
                "User",
                "person",
                [
                    rx.select.item("All users", value=EVERYTHING),
                    rx.foreach(state.people, lambda p: rx.select.item(p[1], value=p[0])),
                ],
                default_value=EVERYTHING,
            ),
            day_filter("From", "day_from"),
            day_filter("To", "day_to"),
            on_submit=state.apply_filters,
        ),
        form_error(state.error),
        *[form_error(error_of(state, name)) for name in ("category", "day_from", "day_to")],
        rows_or_empty(
            state.rows,
            rx.vstack(
                data_table("audit-log-table", ["When", "Who", "Category", "What"], state.rows, _row, actions=False),
                pager(state),
                spacing="3",
                align="stretch",
            ),
            "No changes match these filters.",
            empty_id="audit-log-empty",
        ),
    ]
