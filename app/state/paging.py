"""Previous / Next paging, mixed into a page state whose `_refresh()` loads page `page_number`
and sets `has_next`; drawn by `app.components.tables.pager`. `KeysetPagedState` keeps the
cursor each page starts from, for services that page by keyset (after or before an id)."""

from __future__ import annotations

import reflex as rx


class PagedState(rx.State, mixin=True):
    page_number: rx.Field[int] = rx.field(1)
    has_next: rx.Field[bool] = rx.field(False)

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


class KeysetPagedState(PagedState, mixin=True):
    # _cursors[i] is the cursor that starts page i + 1 (None: from the newest).
    _cursors: list[int | None] = [None]

    def _first_page(self) -> None:
        self.page_number, self._cursors = 1, [None]

    def _cursor(self) -> int | None:
        """Where page `page_number` starts."""
        return self._cursors[self.page_number - 1]

    def _loaded(self, next_cursor: int | None) -> None:
        """Page `page_number` was loaded and the next one starts at `next_cursor` (None: last page)."""
        self._cursors = [*self._cursors[: self.page_number], next_cursor]
        self.has_next = next_cursor is not None
