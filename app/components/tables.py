"""Tables and their pagers (for states mixing in app.state.paging.PagedState), the same on every page."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx
from reflex.vars import ArrayVar

from app.state.paging import PagedState


def data_table(
    table_id: str,
    columns: list[str],
    rows: rx.Var | list,
    render_row: Callable[..., rx.Component],
    *,
    right_aligned: tuple[str, ...] = (),
    actions: bool = True,
) -> rx.Component:
    """A table of `rows` drawn by `render_row`; with `actions`, a last "Actions" column."""
    headers = [
        rx.table.column_header_cell(name, text_align="right" if name in right_aligned else None) for name in columns
    ]
    if actions:
        headers.append(rx.table.column_header_cell("Actions", text_align="right"))
    return rx.table.root(
        rx.table.header(rx.table.row(*headers)),
        rx.table.body(rx.foreach(rows, render_row)),
        variant="surface",
        width="100%",
        id=table_id,
    )


def pager(state: type[PagedState]) -> rx.Component:
    """Previous / Next for a PagedState."""
    return rx.cond(
        (state.page_number > 1) | state.has_next,
        rx.hstack(
            rx.button("Previous", variant="soft", disabled=state.page_number <= 1, on_click=state.previous_page),
            rx.text("Page ", state.page_number, size="2"),
            rx.button("Next", variant="soft", disabled=~state.has_next, on_click=state.next_page),
            align="center",
            spacing="3",
        ),
    )


def rows_or_empty(
    rows: ArrayVar, table: rx.Component, empty: str, *, empty_id: str, icon: str = "info"
) -> rx.Component:
    """The table while there are rows, else a callout saying there are none."""
    return rx.cond(rows.length() > 0, table, rx.callout(empty, icon=icon, id=empty_id))
