"""Audit Log: every change made on the administration and billing pages, who made it and when,
newest first; owners filter it by category, user and dates (days of the account's timezone)."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.forms import form_error
from app.components.layout import console_page, page_heading
from app.components.tables import data_table, pager
from app.db import transaction
from app.errors import DomainError
from app.services import audit
from app.services.permissions import Permission
from app.state.paging import PagedState
from app.state.session import current_actor

EVERYTHING = "all"


@dataclass
class EventRow:
    when: str = ""
    who: str = ""
    category: str = ""
    summary: str = ""


class AuditLogState(PagedState, rx.State):
    rows: list[EventRow] = []
    people: list[list[str]] = []
    category: str = EVERYTHING
    person: str = EVERYTHING
    day_from: str = ""
    day_to: str = ""
    error: str = ""
    # before_id of each page shown so far: page n starts below _cursors[n - 1].
    _cursors: list[int | None] = [None]

    def _refresh(self) -> None:
        try:
            actor = current_actor(self, Permission.AUDIT_VIEW)
            with transaction() as session:
                page = audit.events(
                    session,
                    actor,
                    category="" if self.category == EVERYTHING else self.category,
                    user_email="" if self.person == EVERYTHING else self.person,
                    day_from=self.day_from,
                    day_to=self.day_to,
                    before_id=self._cursors[self.page_number - 1],
                )
                self.people = [[email, name] for email, name in audit.people(session, actor)]
        except DomainError as exc:
            self.error, self.rows, self.has_next = exc.message, [], False
            return
        self.error = ""
        self.rows = [EventRow(r.when, r.who, r.category, r.summary) for r in page.rows]
        self.has_next = page.next_before_id is not None
        self._cursors = [*self._cursors[: self.page_number], page.next_before_id]

    @rx.event
    def load(self):
        self.category = self.person = EVERYTHING
        self.day_from = self.day_to = ""
        self.page_number, self._cursors = 1, [None]
        self._refresh()

    @rx.event
    def set_category(self, value: str):
        self.category = value

    @rx.event
    def set_person(self, value: str):
        self.person = value

    @rx.event
    def apply_filters(self, form_data: dict):
        self.day_from = str(form_data.get("day_from", ""))
        self.day_to = str(form_data.get("day_to", ""))
        self.page_number, self._cursors = 1, [None]
        self._refresh()


def _row(row: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.when, white_space="nowrap"),
        rx.table.cell(row.who),
        rx.table.cell(rx.badge(row.category, variant="soft", color_scheme="gray")),
        rx.table.cell(row.summary),
    )


def _select(label: str, select_id: str, items: list[rx.Component], value, on_change) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=select_id, class_name="ld-label"),
        rx.select.root(rx.select.trigger(id=select_id), rx.select.content(*items), value=value, on_change=on_change),
        spacing="1",
    )


@console_page(
    route="/audit-log",
    title="Audit Log",
    permission=Permission.AUDIT_VIEW,
    section="Administration",
    order=70,
    on_load=[AuditLogState.load],
)
def audit_log_page() -> rx.Component:
    state = AuditLogState
    return rx.vstack(
        page_heading(
            "Audit Log", "Every change to the account, who made it and when. Times are in your account's timezone."
        ),
        rx.form(
            rx.hstack(
                _select(
                    "Category",
                    "category",
                    [rx.select.item("All categories", value=EVERYTHING)]
                    + [rx.select.item(label, value=key) for key, label in audit.CATEGORIES.items()],
                    state.category,
                    state.set_category,
                ),
                _select(
                    "User",
                    "person",
                    [
                        rx.select.item("All users", value=EVERYTHING),
                        rx.foreach(state.people, lambda p: rx.select.item(p[1], value=p[0])),
                    ],
                    state.person,
                    state.set_person,
                ),
                rx.vstack(
                    rx.el.label("From", html_for="day_from", class_name="ld-label"),
                    rx.input(type="date", id="day_from", name="day_from"),
                    spacing="1",
                ),
                rx.vstack(
                    rx.el.label("To", html_for="day_to", class_name="ld-label"),
                    rx.input(type="date", id="day_to", name="day_to"),
                    spacing="1",
                ),
                rx.button("Apply filters", type="submit", variant="soft"),
                align="end",
                spacing="3",
                wrap="wrap",
            ),
            on_submit=state.apply_filters,
            reset_on_submit=False,
        ),
        form_error(state.error),
        rx.cond(
            state.rows.length() > 0,
            rx.vstack(
                data_table("audit-log-table", ["When", "Who", "Category", "What"], state.rows, _row, actions=False),
                pager(state),
                spacing="3",
                align="stretch",
            ),
            rx.callout("No changes match these filters.", icon="info", id="audit-log-empty"),
        ),
        spacing="4",
        align="stretch",
    )
