"""Operator API keys: "ldop_" plus a long random secret, shown once when made in the back office;
only the SHA-256 is stored. A customer's key ("ld_…") never has this form, so neither kind of key
is ever taken for the other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from app.errors import DomainError, NotFound, ValidationFailed
from app.models import OperatorApiKey, utcnow
from app.services.operator.staff import Author, Operator
from app.services.timefmt import format_datetime
from app.services.tokens import key_name, live_key, new_key, sha256_hex

KEY_PREFIX = "ldop_"
KEY_FORMAT = re.compile(r"ldop_[A-Za-z0-9_-]{20,120}")
SHOWN_PREFIX_LENGTH = 12
NAME_MAX_LENGTH = 100
DEMO_KEY_NAME = "Demo operator key"


class InvalidOperatorKey(DomainError):
    status_code = 401
    code = "invalid_api_key"

    def __init__(self):
        super().__init__("The operator API key is missing, malformed, unknown or deleted.")


@dataclass(frozen=True)
class OperatorKeyRow:
    id: str = ""
    name: str = ""
    prefix: str = ""
    created: str = ""
    last_used: str = ""


def create_key(session: Session, operator: Operator, name: str) -> tuple[OperatorApiKey, str]:
    """A new key and its full text, which is never retrievable again."""
    full_key = new_key(KEY_PREFIX)
    return _store(session, key_name(name, NAME_MAX_LENGTH), full_key, operator.operator_id), full_key


def key_rows(session: Session, operator: Operator) -> list[OperatorKeyRow]:
    """The live keys, newest first, times in UTC."""
    rows = session.exec(
        select(OperatorApiKey).where(col(OperatorApiKey.deleted_at).is_(None)).order_by(col(OperatorApiKey.id).desc())
    ).all()
    return [
        OperatorKeyRow(
            id=row.public_id,
            name=row.name,
            prefix=f"{row.prefix}…",
            created=format_datetime(row.created_at, "UTC"),
            last_used=format_datetime(row.last_used_at, "UTC") if row.last_used_at else "Never",
        )
        for row in rows
    ]


def delete_key(session: Session, operator: Operator, public_id: str, *, now: datetime | None = None) -> None:
    key = session.exec(
        select(OperatorApiKey).where(OperatorApiKey.public_id == public_id, col(OperatorApiKey.deleted_at).is_(None))
    ).first()
    if key is None:
        raise NotFound("No such API key.")
    key.deleted_at = now or utcnow()
    session.add(key)
    session.flush()


def authenticate(session: Session, full_key: str | None, *, now: datetime | None = None) -> Author:
    """Who a call with this key acts as, else InvalidOperatorKey. Records its use."""
    key = live_key(session, OperatorApiKey, full_key, KEY_FORMAT)
    if key is None:
        raise InvalidOperatorKey()
    key.last_used_at = now or utcnow()
    session.add(key)
    return Author(name=f"Operator API key “{key.name}”", email=f"{key.prefix}…")


def ensure_demo_key(session: Session, full_key: str) -> OperatorApiKey:
    """Store the demo operator key (DEMO_OPERATOR_API_KEY); idempotent."""
    if KEY_FORMAT.fullmatch(full_key) is None:
        raise ValidationFailed(
            "DEMO_OPERATOR_API_KEY must be 'ldop_' followed by 20 to 120 letters, digits, '_' or '-'."
        )
    existing = session.exec(select(OperatorApiKey).where(OperatorApiKey.secret_hash == sha256_hex(full_key))).first()
    return existing if existing is not None else _store(session, DEMO_KEY_NAME, full_key, None)


def live_demo_keys(session: Session, full_keys: set[str]) -> list[OperatorApiKey]:
    digests = [sha256_hex(key) for key in full_keys]
    return list(
        session.exec(
            select(OperatorApiKey).where(
                col(OperatorApiKey.secret_hash).in_(digests), col(OperatorApiKey.deleted_at).is_(None)
            )
        )
    )


def _store(session: Session, name: str, full_key: str, operator_id: int | None) -> OperatorApiKey:
    key = OperatorApiKey(
        name=name,
        prefix=full_key[:SHOWN_PREFIX_LENGTH],
        secret_hash=sha256_hex(full_key),
        created_by_operator_id=operator_id,
    )
    session.add(key)
    session.flush()
    return key
