"""Back office: every customer account, newest first, found by name, email, account id or domain
and filtered by plan, past due, suspended and balance below zero."""

from __future__ import annotations

import reflex as rx

from app.components.filters import filter_form, filter_select
from app.components.forms import form_error
from app.components.tables import data_table, pager, rows_or_empty, status_badge
from app.pages.operator.shell import operator_page
from app.services.operator import accounts
from app.services.plans import PLANS
from app.state.form import FormState
from app.state.operator import operating
from app.state.paging import KeysetPagedState

ANY = "any"
FLAGS = (("past_due", "Past due"), ("suspended", "Suspended"), ("below_zero", "Balance below zero"))


class OperatorAccountsState(FormState, KeysetPagedState, rx.State):
    rows: rx.Field[list[accounts.AccountRow]] = rx.field(default_factory=list)
    search: rx.Field[str] = rx.field("")
    plan: rx.Field[str] = rx.field(ANY)
    flag: rx.Field[str] = rx.field(ANY)

    def _refresh(self) -> None:
        self.rows, self.has_next = [], False
        with self._attempt(), operating(self) as (_operator, session):
            page = accounts.list_accounts(
                session,
                search=self.search,
                plan="" if self.plan == ANY else self.plan,
                past_due=self.flag == "past_due",
                suspended=self.flag == "suspended",
                below_zero=self.flag == "below_zero",
                before_id=self._cursor(),
            )
            self.rows = page.rows
            self._loaded(page.next_before_id)

    @rx.event
    def load(self):
        self.search, self.plan, self.flag = "", ANY, ANY
        self._first_page()
        self._refresh()

    @rx.event
    def apply_filters(self, form: dict):
        self.search = str(form.get("search") or "")
        self.plan = str(form.get("plan") or ANY)
        self.flag = str(form.get("flag") or ANY)
        self._first_page()
        self._refresh()


STATUS_COLORS = {"active": "green", "past due": "orange", "suspended": "red"}


def _row(row: accounts.AccountRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(row.name, href=f"/operator/account?id={row.id}"), rx.text(row.id, size="1", color_scheme="gray")
        ),
        rx.table.cell(row.plan),
        rx.table.cell(status_badge(row.status, STATUS_COLORS)),
        rx.table.cell(row.balance, text_align="right"),
        rx.table.cell(row.used_today, text_align="right"),
        rx.table.cell(row.last_api_call, white_space="nowrap"),
        rx.table.cell(row.created, white_space="nowrap"),
    )


@operator_page("/operator", "Accounts", "Every customer account, newest first.", on_load=[OperatorAccountsState.load])
def operator_accounts_page() -> list[rx.Component]:
    state = OperatorAccountsState
    return [
        filter_form(
            rx.vstack(
                rx.text("Search", size="2", weight="medium"),
                rx.input(name="search", id="search", placeholder="Name, email, account id or domain", width="20em"),
                spacing="1",
            ),
            filter_select(
                "Plan",
                "plan",
                [rx.select.item("All plans", value=ANY)]
                + [rx.select.item(plan.name, value=code) for code, plan in PLANS.items()],
                default_value=ANY,
            ),
            filter_select(
                "Show",
                "flag",
                [rx.select.item("All accounts", value=ANY)]
                + [rx.select.item(label, value=key) for key, label in FLAGS],
                default_value=ANY,
            ),
            on_submit=state.apply_filters,
        ),
        form_error(state.error),
        rows_or_empty(
            state.rows,
            rx.vstack(
                data_table(
                    "operator-accounts",
                    ["Account", "Plan", "Status", "Balance", "Today's usage", "Last API call", "Created"],
                    state.rows,
                    _row,
                    right_aligned=("Balance", "Today's usage"),
                    actions=False,
                ),
                pager(state),
                spacing="3",
                align="stretch",
            ),
            "No account matches.",
            empty_id="operator-accounts-empty",
        ),
    ]
