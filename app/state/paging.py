"""Previous / Next paging, mixed into a page state whose `_refresh()` loads page `page_number`
and sets `has_next`; drawn by `app.components.tables.pager`."""

from __future__ import annotations

import reflex as rx


class PagedState(rx.State, mixin=True):
    page_number: int = 1
    has_next: bool = False

    def _refresh(self) -> None:
        raise NotImplementedError

    @rx.event
    def next_page(self):
        if self.has_next:
            self.page_number += 1
            self._refresh()

    @rx.event
    def previous_page(self):
        if self.page_number > 1:
            self.page_number -= 1
            self._refresh()
