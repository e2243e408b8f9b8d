"""The chat box (seed 002): one conversation per account between its users and the operator's
staff. Every user of the account may read and write it (info.view, which every role holds), and
sees only their own account's; each user has their own unread count (operator messages past what
they last read), the staff one for all of them (app.services.operator.chat answers from the back
office). Messages are plain text, at most MAX_LENGTH characters, shown as text (never as HTML or
Markdown). A new message is told live to the account's open tabs and to the back office."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import ValidationFailed
from app.models import ChatConversation, ChatMessage, User, utcnow
from app.services import live
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_datetime

MAX_LENGTH = 2000
# The latest messages shown; older ones stay stored.
SHOWN = 100
# A flood guard per account: more customer messages than this in a minute are refused.
MAX_PER_MINUTE = 20
CUSTOMER, OPERATOR = "customer", "operator"
# Control characters but tab and line feed: invisible, and some break how text is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class ChatLine:
    id: int
    from_support: bool
    author: str
    body: str
    sent: str


@dataclass(frozen=True)
class ChatView:
    lines: list[ChatLine]
    unread: int


def clean_body(body: str) -> str:
    """The text as it is stored, or ValidationFailed (field `body`) saying what is wrong."""
    text = _CONTROL.sub("", body.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise ValidationFailed("Write a message first.", field="body")
    if len(text) > MAX_LENGTH:
        raise ValidationFailed(
            f"Keep a message to {MAX_LENGTH:,} characters (this one has {len(text):,}).", field="body"
        )
    return text


def lines(session: Session, account_id: int, timezone: str) -> list[ChatLine]:
    """The account's latest SHOWN messages, oldest first, times in `timezone`."""
    newest = session.exec(
        select(ChatMessage)
        .where(col(ChatMessage.account_id) == account_id)
        .order_by(col(ChatMessage.id).desc())
        .limit(SHOWN)
    ).all()
    return [
        ChatLine(
            id=message.id or 0,
            from_support=message.author == OPERATOR,
            author=message.author_name,
            body=message.body,
            sent=format_datetime(message.created_at, timezone),
        )
        for message in reversed(newest)
    ]


def post(
    session: Session,
    account_id: int,
    *,
    author: str,
    author_name: str,
    body: str,
    user_id: int | None = None,
    operator_id: int | None = None,
    now: datetime | None = None,
) -> ChatMessage:
    """Append a message (already cleaned) to the account's conversation, opened by the first one."""
    now = now or utcnow()
    message = ChatMessage(
        account_id=account_id,
        author=author,
        author_name=author_name[:200],
        body=body,
        user_id=user_id,
        operator_id=operator_id,
        created_at=now,
    )
    session.add(message)
    session.flush()
    conversation = conversation_of(session, account_id)
    if conversation is None:
        conversation = ChatConversation(account_id=account_id, created_at=now)
        session.add(conversation)
    conversation.last_message_id, conversation.last_message_at = message.id or 0, now
    session.flush()
    live.mark(session, live.chat_topic(account_id))
    live.mark(session, live.OPERATOR_INBOX)
    return message


def conversation_of(session: Session, account_id: int) -> ChatConversation | None:
    return session.exec(select(ChatConversation).where(col(ChatConversation.account_id) == account_id)).first()


def _user(session: Session, actor: Actor) -> User | None:
    """The reader's membership; None for an operator viewing the account (nothing is marked read)."""
    return None if actor.viewing else session.get_one(User, actor.user_id)


def unread(session: Session, actor: Actor) -> int:
    """Operator messages this user has not read yet: the launcher's badge."""
    require(actor, Permission.INFO_VIEW)
    user = _user(session, actor)
    read_id = user.chat_read_id if user is not None else 0
    return session.exec(
        select(func.count())
        .select_from(ChatMessage)
        .where(
            col(ChatMessage.account_id) == actor.account_id,
            col(ChatMessage.author) == OPERATOR,
            col(ChatMessage.id) > read_id,
        )
    ).one()


def read(session: Session, actor: Actor) -> ChatView:
    """The conversation as the user opens it: its messages, and all of them read from now on."""
    require(actor, Permission.INFO_VIEW)
    conversation = conversation_of(session, actor.account_id)
    user = _user(session, actor)
    if conversation is not None and user is not None and user.chat_read_id < conversation.last_message_id:
        user.chat_read_id = conversation.last_message_id
        session.flush()
    return ChatView(lines(session, actor.account_id, actor.timezone), unread=0)


def send(session: Session, actor: Actor, body: str, *, now: datetime | None = None) -> ChatView:
    """The user's message to the operator's staff; returns the conversation with it, read."""
    require(actor, Permission.INFO_VIEW)
    text = clean_body(body)
    now = now or utcnow()
    recent = session.exec(
        select(func.count())
        .select_from(ChatMessage)
        .where(
            col(ChatMessage.account_id) == actor.account_id,
            col(ChatMessage.author) == CUSTOMER,
            col(ChatMessage.created_at) > now - timedelta(minutes=1),
        )
    ).one()
    if recent >= MAX_PER_MINUTE:
        raise ValidationFailed("Too many messages in a minute; wait a moment and send it again.", field="body")
    post(
        session,
        actor.account_id,
        author=CUSTOMER,
        author_name=actor.full_name or actor.email,
        body=text,
        user_id=actor.user_id,
        now=now,
    )
    return read(session, actor)
