"""`rx.event` as the type checker should see it: Reflex types the decorator as a class whose
`__new__` returns the handler, which mypy does not follow, so a handler called with its
arguments in a component (`State.resend(row.id)`) would not type-check. Use `@event` for
handlers that components call with arguments; it is `rx.event` at run time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx


def event(fn: Callable[..., Any]) -> Any:
    return cast(Any, rx.event)(fn)
