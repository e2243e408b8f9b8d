"""What the public pages (sign in, accept an invitation, reset a password) share: a transaction
with no signed-in actor, and the check that a new password was typed the same twice."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlmodel import Session

from app.db import transaction
from app.errors import ValidationFailed


@contextmanager
def public_transaction() -> Iterator[Session]:
    """The one way a public page's handler works on data: no actor, one transaction (committed
    when the block ends without error). The service it calls checks the token it is given."""
    with transaction() as session:
        yield session


def new_password(form: Mapping[str, object]) -> str:
    """The password of a `new_password_fields` form; ValidationFailed when the repetition differs."""
    password = str(form.get("password") or "")
    if password != str(form.get("confirm") or ""):
        raise ValidationFailed("The two passwords differ.", field="password")
    return password
