"""Small builders for test data, through the same services the app uses."""

from __future__ import annotations

from sqlmodel import Session

from app.models import Account, User
from app.services.accounts import builtin_role, create_account, create_user

PASSWORD = "correct-horse-battery"


def make_account(session: Session, name: str = "Acme Inc") -> Account:
    return create_account(session, name=name)


def make_user(
    session: Session,
    account: Account,
    email: str,
    role_key: str = "owner",
    *,
    password: str | None = PASSWORD,
    status: str = "active",
) -> User:
    return create_user(
        session,
        account=account,
        email=email,
        full_name=email.split("@")[0].title(),
        role=builtin_role(session, role_key),
        password=password,
        status=status,
    )
