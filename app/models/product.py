"""The operator's products an account has signed up for (beyond the core product every account has)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import utcnow


class AccountProduct(SQLModel, table=True):
    __tablename__ = "account_product"
    __table_args__ = (
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("account_id", "product_code", name="uq_account_product"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    account_id: int = Field(foreign_key="account.id", primary_key=True, index=True)
    product_code: str = Field(max_length=32)
    plan_code: str = Field(max_length=32)
    started_at: datetime = Field(default_factory=utcnow)
    # The invoice of the change that set its plan: for the rest of the month it started in, or of
    # an upgrade ("" when nothing was charged).
    invoice_public_id: str = Field(default="", max_length=32)
    # The plan that change replaced ("" for a sign-up): restored, or the product removed, when the
    # change's card payment fails after 3-D Secure (`products.change` asked again).
    previous_plan_code: str = Field(default="", max_length=32)
