"""Back office: the chat box's conversations (app.services.operator.chat), the newest message
first, with what the staff have not read; each opens its account, where staff answer. Live: a
customer's new message moves its conversation to the top."""

from __future__ import annotations

import reflex as rx

from app.components.forms import form_error
from app.components.tables import data_table, pager, rows_or_empty
from app.pages.operator.shell import CONVERSATIONS, operator_page
from app.services import live
from app.services.operator import chat
from app.state.form import FormState
from app.state.live import LiveState
from app.state.operator import operating
from app.state.paging import KeysetPagedState


class OperatorConversationsState(FormState, KeysetPagedState, LiveState, rx.State):
    rows: rx.Field[list[chat.ConversationRow]] = rx.field(default_factory=list)

    def _refresh(self) -> None:
        with self._attempt(), operating(self) as (_operator, session):
            page = chat.inbox(session, before_id=self._cursor())
            self.rows = page.rows
            self._loaded(page.next_before_id)

    @rx.event
    def load(self):
        self._first_page()
        self._refresh()
        self._watch_live(live.OPERATOR_INBOX)

    def _live_refresh(self) -> None:
        self._refresh()


def _row(row: chat.ConversationRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.link(row.account_name, href=f"/operator/account?id={row.account_id}"),
            rx.text(row.account_id, size="1", color_scheme="gray"),
        ),
        rx.table.cell(
            rx.cond(row.last_from_support, rx.text("Support: ", as_="span", weight="medium")), row.last_message
        ),
        rx.table.cell(row.last_at, white_space="nowrap"),
        rx.table.cell(rx.cond(row.unread > 0, rx.badge(row.unread, color_scheme="red", variant="solid"), "")),
    )


@operator_page(
    CONVERSATIONS,
    "Conversations",
    "The chat box's conversations, newest message first; open an account to answer.",
    on_load=[OperatorConversationsState.load],
)
def operator_conversations_page() -> list[rx.Component]:
    state = OperatorConversationsState
    return [
        form_error(state.error),
        rows_or_empty(
            state.rows,
            rx.vstack(
                data_table(
                    "operator-conversations",
                    ["Account", "Last message", "When", "Unread"],
                    state.rows,
                    _row,
                    actions=False,
                ),
                pager(state),
                spacing="3",
                align="stretch",
            ),
            "No conversations yet: a customer's first message in the chat box starts one.",
            empty_id="operator-conversations-empty",
        ),
    ]
