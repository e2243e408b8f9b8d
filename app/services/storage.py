"""Where uploaded files live (`settings.data_dir / "uploads"`) and how much an account stores: its
logo and its users' profile pictures, what the plan's file storage limit counts."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from app.config import get_settings
from app.models import Account, Person, User


def uploads_dir() -> Path:
    return get_settings().data_dir / "uploads"


def stored_path(relative: str) -> Path | None:
    """The file of a stored relative path, None for none or one outside the uploads directory."""
    if not relative:
        return None
    root = uploads_dir().resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def file_size(relative: str) -> int:
    path = stored_path(relative)
    return path.stat().st_size if path is not None and path.is_file() else 0


def stored_bytes(session: Session, account: Account) -> int:
    """Bytes of the account's uploaded files: the logo and the profile picture of every person
    who is one of its users."""
    pictures = session.exec(
        select(Person.picture_path)
        .join(User, col(User.person_id) == Person.id)
        .where(User.account_id == account.id, col(Person.picture_path) != "")
        .distinct()
    ).all()
    return file_size(account.logo_path) + sum(file_size(path) for path in pictures)
