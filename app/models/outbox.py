from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from app.models.base import utcnow


class OutboxEmail(SQLModel, table=True):
    """Every email the console sends. Delivered by a job when SMTP_URL is set."""

    __tablename__ = "outbox_email"

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    to_address: str = Field(max_length=320, index=True)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    # At most one attachment (an invoice PDF); empty name means none.
    attachment_name: str = Field(default="", max_length=200)
    attachment_type: str = Field(default="", max_length=100)
    attachment: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
