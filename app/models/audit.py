"""The audit log: who changed what, when, in an account. Append-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, PrimaryKeyConstraint
from sqlmodel import Field, SQLModel

from app.models.base import utcnow


class AuditEvent(SQLModel, table=True):
    """One change. The actor's name and email are copied, so the entry still reads after the
    user is removed."""

    __tablename__ = "audit_event"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        # On PostgreSQL the primary key is this index; SQLite's is the rowid alone (distribution.py).
        Index("ix_audit_event_account_id_id", "account_id", "id").ddl_if(dialect="sqlite"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    actor_user_id: int | None = Field(default=None)
    actor_name: str = Field(default="", max_length=200)
    actor_email: str = Field(default="", max_length=320)
    # "team.invite", "payment_method.add", …: the part before the dot is the filter's category.
    action: str = Field(max_length=64)
    summary: str = Field(max_length=500)
