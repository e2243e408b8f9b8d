"""The chat between a customer account and the operator's staff: one conversation per account,
its messages append-only. Plain text; the author's name is copied, so a message still reads after
its author is removed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, PrimaryKeyConstraint, Text
from sqlmodel import Field, SQLModel

from app.models.base import utcnow


class ChatConversation(SQLModel, table=True):
    """An account's conversation: what the back office lists, newest message first."""

    __tablename__ = "chat_conversation"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        Index("ix_chat_conversation_last_message_id", "last_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True, unique=True)
    last_message_id: int = Field(default=0)
    last_message_at: datetime = Field(default_factory=utcnow)
    # The last message the operator's staff have read: one inbox for all of them.
    operator_read_id: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow)


class ChatMessage(SQLModel, table=True):
    __tablename__ = "chat_message"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        # On PostgreSQL the primary key is this index; SQLite's is the rowid alone (distribution.py).
        Index("ix_chat_message_account_id_id", "account_id", "id").ddl_if(dialect="sqlite"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    # "customer" (a user of the account) or "operator" (a member of the operator's staff)
    author: str = Field(max_length=16)
    # Who wrote it, without a foreign key: a user removed from the team leaves their messages.
    user_id: int | None = Field(default=None)
    operator_id: int | None = Field(default=None)
    author_name: str = Field(default="", max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
