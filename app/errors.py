"""Domain errors carry the HTTP status they map to and, for forms, the field they concern."""

from __future__ import annotations

from contextvars import ContextVar


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationFailed(DomainError):
    status_code = 422
    code = "validation_error"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class FormInvalid(ValidationFailed):
    """Every field error of one form submission, by field name."""

    def __init__(self, errors: dict[str, str]):
        field, message = next(iter(errors.items()))
        super().__init__(message, field=field)
        self.errors = errors


# Set while a console's handler may change nothing (an operator's "View as", a suspended account):
# the error every change refuses with. The database session refuses writes (`app.db.read_only`);
# the Stripe gateway refuses every call but reads with it too, and no uploaded file is stored, so
# nothing changes at Stripe or on disk either.
changes_refused: ContextVar[DomainError | None] = ContextVar("changes_refused", default=None)
