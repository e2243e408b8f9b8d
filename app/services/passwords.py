"""Password hashing (passlib, Argon2) and the rules a new password must meet."""

from __future__ import annotations

import secrets
from functools import lru_cache

from passlib.context import CryptContext

from app.config import DEFAULT_DEMO_PASSWORD, get_settings
from app.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 128


@lru_cache(maxsize=1)
def _context() -> CryptContext:
    settings = get_settings()
    return CryptContext(
        schemes=["argon2"],
        argon2__rounds=settings.password_hash_rounds,
        argon2__memory_cost=settings.password_hash_memory_kib,
        argon2__parallelism=2,
    )


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of the same cost as a user's, of a secret nobody knows."""
    return _context().hash(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    return _context().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether `password` matches; an empty `password_hash` (no such user, or no password yet)
    costs the same Argon2 check, so timing does not tell whether an email is known."""
    if not password_hash:
        _context().verify(password, _dummy_hash())
        return False
    return _context().verify(password, password_hash)


def check_new_password(password: str, email: str, *, field: str = "password") -> None:
    settings = get_settings()
    if settings.production and password in {DEFAULT_DEMO_PASSWORD, settings.demo_password}:
        raise ValidationFailed("This is the published demo password: choose another.", field=field)
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(f"Use at least {MIN_LENGTH} characters.", field=field)
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(f"Use at most {MAX_LENGTH} characters.", field=field)
    local_part = email.split("@", 1)[0].lower()
    lowered = password.lower()
    if lowered == email.lower() or (len(local_part) >= 3 and local_part in lowered):
        raise ValidationFailed("The password must not contain your email address.", field=field)
