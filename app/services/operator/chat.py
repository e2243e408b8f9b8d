"""The back office's side of the chat box (app.services.chat): every account's conversation,
newest message first, with what the staff have not read; an account's conversation, read by
opening it, and the staff's answers. One inbox for all staff: what one of them read is read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from app.models import Account, ChatConversation, ChatMessage
from app.services import chat, live
from app.services.chat import CUSTOMER, OPERATOR, ChatLine
from app.services.operator.accounts import account_by_public_id
from app.services.operator.staff import Operator
from app.services.timefmt import format_datetime

PAGE_SIZE = 25
PREVIEW_LENGTH = 120


@dataclass(frozen=True)
class ConversationRow:
    account_id: str
    account_name: str
    last_message: str
    last_from_support: bool
    last_at: str
    unread: int


@dataclass(frozen=True)
class InboxPage:
    rows: list[ConversationRow]
    # Pass as `before_id` for the next page; None on the last page.
    next_before_id: int | None


def _unread_of_conversation():
    """SQL: the customer messages of a conversation past what the staff have read."""
    return (
        select(func.count())
        .select_from(ChatMessage)
        .where(
            col(ChatMessage.account_id) == col(ChatConversation.account_id),
            col(ChatMessage.author) == CUSTOMER,
            col(ChatMessage.id) > col(ChatConversation.operator_read_id),
        )
        .correlate(ChatConversation)
        .scalar_subquery()
    )


def inbox(session: Session, *, before_id: int | None = None, limit: int = PAGE_SIZE) -> InboxPage:
    """Conversations by their newest message, newest first, in keyset pages."""
    query = (
        select(ChatConversation, Account, ChatMessage, _unread_of_conversation())
        .join(Account, col(Account.id) == col(ChatConversation.account_id))
        .join(
            ChatMessage,
            and_(
                col(ChatMessage.account_id) == col(ChatConversation.account_id),
                col(ChatMessage.id) == col(ChatConversation.last_message_id),
            ),
        )
        .order_by(col(ChatConversation.last_message_id).desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        query = query.where(col(ChatConversation.last_message_id) < before_id)
    found = session.exec(query).all()
    rows = [
        ConversationRow(
            account_id=account.public_id,
            account_name=account.name,
            last_message=_preview(message.body),
            last_from_support=message.author == OPERATOR,
            last_at=format_datetime(message.created_at, "UTC"),
            unread=unread,
        )
        for _conversation, account, message, unread in found[:limit]
    ]
    next_id = found[limit - 1][0].last_message_id if len(found) > limit else None
    return InboxPage(rows, next_id)


def _preview(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def unread_total(session: Session) -> int:
    """Customer messages no member of staff has read yet, in every conversation: the nav's badge."""
    return session.exec(
        select(func.count())
        .select_from(ChatMessage)
        .join(ChatConversation, col(ChatConversation.account_id) == col(ChatMessage.account_id))
        .where(col(ChatMessage.author) == CUSTOMER, col(ChatMessage.id) > col(ChatConversation.operator_read_id))
    ).one()


def read(session: Session, account_public_id: str) -> list[ChatLine]:
    """The account's conversation as a member of staff opens it, read for all staff from now on."""
    account = account_by_public_id(session, account_public_id)
    assert account.id is not None
    conversation = chat.conversation_of(session, account.id)
    if conversation is not None and conversation.operator_read_id < conversation.last_message_id:
        conversation.operator_read_id = conversation.last_message_id
        session.flush()
        live.mark(session, live.OPERATOR_INBOX)  # other staff's unread counts move too
    return chat.lines(session, account.id, "UTC")


def reply(session: Session, operator: Operator, account_public_id: str, body: str) -> list[ChatLine]:
    """A member of staff's answer in the account's conversation; the account's users see it live."""
    account = account_by_public_id(session, account_public_id)
    assert account.id is not None
    chat.post(
        session,
        account.id,
        author=OPERATOR,
        author_name=operator.name,
        body=chat.clean_body(body),
        operator_id=operator.operator_id,
    )
    return read(session, account_public_id)
