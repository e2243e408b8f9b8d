"""Counting attempts that must be slowed down: failed sign-ins, password-reset requests and wrong
current passwords, per email and per client address (`AuthAttempt` rows).

An attempt is written in a transaction of its own once the caller's transaction has ended,
committed or rolled back: a wrong password usually ends in an error that rolls the request back,
and it must count all the same. (Inside the caller's transaction SQLite's write lock is the
caller's, so the row cannot be written any earlier.)"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, event, func, insert
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from app.models import AuthAttempt

log = logging.getLogger("ledgerdesk.throttle")

SIGN_IN = "sign_in"
RESET = "reset"
PASSWORD = "password"
SIGN_UP = "sign_up"
# Every throttle's window is shorter: older rows count for nothing.
KEEP = timedelta(days=1)
MAX_EMAIL_LENGTH = 320
_PENDING = "ledgerdesk.throttle.pending"
_LISTENING = "ledgerdesk.throttle.listening"


def client_ip(raw: str | None) -> str:
    """The client's address as the server stores it: a valid IPv4 or IPv6 address in its short
    form (an IPv4-mapped one as IPv4, no zone), "" when `raw` is not an address."""
    text = (raw or "").strip().split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def ip_key(raw: str | None) -> str:
    """What the per-address limits count by: the IPv4 address, or the /64 network of an IPv6 one
    (one subscriber holds a whole /64); "" for no valid address, which is counted as one."""
    ip = client_ip(raw)
    if ":" in ip:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return ip


def count(
    session: Session,
    kind: str,
    *,
    since: datetime,
    email: str | None = None,
    ip: str | None = None,
) -> int:
    """Attempts of `kind` after `since`, of this email and/or this client address (`ip_key(ip)`)."""
    query = select(func.count(col(AuthAttempt.id))).where(AuthAttempt.kind == kind, col(AuthAttempt.created_at) > since)
    if email is not None:
        query = query.where(AuthAttempt.email == email)
    if ip is not None:
        query = query.where(AuthAttempt.ip_key == ip_key(ip))
    return session.exec(query).one()


def record(session: Session, kind: str, *, email: str, ip: str, now: datetime) -> None:
    """Count an attempt; written once the caller's transaction ends, whatever its outcome."""
    row = {"kind": kind, "email": email[:MAX_EMAIL_LENGTH], "ip_key": ip_key(ip), "created_at": now}
    if not session.in_transaction():
        _write(session, [row])
        return
    if not session.info.get(_LISTENING):
        event.listen(session, "after_transaction_end", _after_transaction_end)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, []).append(row)


def clear(session: Session, kind: str, *, email: str, ip: str | None = None) -> None:
    """Forget this email's attempts, from this address only when `ip` is given."""
    query = delete(AuthAttempt).where(col(AuthAttempt.kind) == kind, col(AuthAttempt.email) == email)
    if ip is not None:
        query = query.where(col(AuthAttempt.ip_key) == ip_key(ip))
    session.exec(query)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return  # a savepoint, not the caller's transaction
    rows = session.info.pop(_PENDING, None)
    if rows:
        _write(session, rows)


def _write(session: Session, rows: list[dict]) -> None:
    try:
        with Session(session.get_bind()) as own:
            own.execute(insert(AuthAttempt), rows)
            own.execute(delete(AuthAttempt).where(col(AuthAttempt.created_at) < rows[-1]["created_at"] - KEEP))
            own.commit()
    except Exception:
        # Raised from the caller's commit or rollback it would hide the request's own outcome.
        log.exception("could not record %d %s attempt(s)", len(rows), rows[0]["kind"])
