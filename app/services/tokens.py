"""Random secrets that are handed out once and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from app.errors import ValidationFailed

K = TypeVar("K", bound=Any)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_key(prefix: str) -> str:
    """The full text of a new API key (a customer's "ld_…" or an operator's "ldop_…")."""
    return prefix + new_secret()


def key_name(name: str, max_length: int) -> str:
    """An API key's name as typed, trimmed; refused at the name field when empty or too long."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Enter a name for the key.", field="name")
    if len(name) > max_length:
        raise ValidationFailed(f"Use at most {max_length} characters.", field="name")
    return name


def live_key(session: Session, model: type[K], full_key: str | None, key_format: re.Pattern[str]) -> K | None:
    """The key row (customers' or the operator's table) of a presented key of the right form that
    is not deleted; looked up by its SHA-256 and compared in constant time."""
    if not full_key or key_format.fullmatch(full_key) is None:
        return None
    digest = sha256_hex(full_key)
    key = session.exec(select(model).where(col(model.secret_hash) == digest, col(model.deleted_at).is_(None))).first()
    return key if key is not None and hmac.compare_digest(key.secret_hash, digest) else None
