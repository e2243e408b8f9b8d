"""Logging for every process (the web backend, job workers, the cli): one configuration, plain
text or one JSON object per line (LOG_FORMAT), and the request context (request id, account id)
that every record logged while serving a request or running the job it caused carries."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The fields a record may carry besides its message, in the order a JSON line lists them.
FIELDS = ("request_id", "account_id", "job_id", "job_kind", "method", "route", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A request id from a client is kept only when it is short and plain (it is written to every line).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# One mutable dict per request or job: code deeper down (in a thread, too) adds to it with bind().
_context: ContextVar[dict[str, Any] | None] = ContextVar("ledgerdesk_log_context", default=None)


def request_id_from(header: str | None) -> str:
    """The client's X-Request-Id when it is safe to log, else a new one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@contextmanager
def log_context(**fields: Any) -> Iterator[dict[str, Any]]:
    """Every record logged inside carries these fields (and what bind() adds)."""
    context = {key: value for key, value in fields.items() if value is not None}
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current request's or job's context (no-op outside one)."""
    context = _context.get()
    if context is not None:
        context.update({key: value for key, value in fields.items() if value is not None})


def current(field: str) -> Any:
    context = _context.get()
    return None if context is None else context.get(field)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request {request_id}]" if request_id else line


def configure_logging(log_format: str | None = None) -> None:
    """Our records at INFO (emails without SMTP are read from here in development), everything
    else from WARNING, to stderr; calling it again replaces the handler it installed."""
    if log_format is None:
        from app.config import get_settings

        log_format = get_settings().log_format
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    handler.addFilter(_ContextFilter())
    handler.set_name("ledgerdesk")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "ledgerdesk"]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("ledgerdesk").setLevel(logging.INFO)
