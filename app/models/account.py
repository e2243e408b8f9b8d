from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import public_id, utcnow


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    public_id: str = Field(default_factory=lambda: public_id("acct", 10), unique=True, max_length=32)
    name: str = Field(max_length=200)
    logo_path: str = Field(default="", max_length=300)
    domain: str = Field(default="", max_length=253)
    timezone: str = Field(default="UTC", max_length=64)
    language: str = Field(default="en", max_length=16)
    plan_code: str = Field(default="basic", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
