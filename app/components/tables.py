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
    **props,
) -> rx.Component:
    """A table of `rows` drawn by `render_row`; with `actions`, a last "Actions" column. `props`
    go to the table (a size, another variant)."""
    headers = [
        rx.table.column_header_cell(name, text_align="right" if name in right_aligned else None) for name in columns
    ]
    if actions:
        headers.append(rx.table.column_header_cell("Actions", text_align="right"))
    table = rx.table.root(
        rx.table.header(rx.table.row(*headers)),
        rx.table.body(rx.foreach(rows, render_row)),
        **{"variant": "surface", "width": "100%", "id": table_id, **props},
    )
    # On a narrow screen the table scrolls sideways inside this region, which the keyboard can
    # focus (and scroll with the arrow keys); the page itself never scrolls sideways, and the
    # Actions column stays in view at the region's right (styles.css).
    return rx.el.div(
        table,
        class_name="ld-table-scroll",
        role="region",
        tab_index=0,
        aria_label=table_id.replace("-", " "),
        data_actions="true" if actions else "false",
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
    rows: ArrayVar, table: rx.Component, empty: rx.Var | str, *, empty_id: str, icon: str = "info"
) -> rx.Component:
    """The table while there are rows, else a callout saying there are none."""
    return rx.cond(rows.length() > 0, table, rx.callout(empty, icon=icon, id=empty_id))


def status_badge(status: rx.Var | str, colors: dict[str, str], *, default: str = "gray", **props) -> rx.Component:
    """`status` in a badge colored by `colors` (status → color scheme), `default` for any other."""
    return rx.badge(status, color_scheme=rx.match(status, *colors.items(), default), **props)


def delete_icon_button(aria_label: rx.Var | str, on_click) -> rx.Component:
    """The trash button at the end of a row, named for what it deletes."""
    return rx.icon_button(
        rx.icon("trash-2", size=16), variant="ghost", color_scheme="red", aria_label=aria_label, on_click=on_click
    )
