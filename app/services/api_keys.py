"""API keys of the metering API. A key is "ld_" plus a long random secret, shown once when it is
created; only its SHA-256 is stored. Every call looks the hash up in the database (no cache of
validity), so a deleted key is refused on the very next call in every process."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from app import logs
from app.errors import DomainError, NotFound, ValidationFailed
from app.models import Account, ApiKey, LedgerEntry, utcnow
from app.services import audit, usage
from app.services.company import account_timezone
from app.services.info import limit_status, user_names
from app.services.money import format_usd, parse_dollars, plain_dollars
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.roles import lock_account
from app.services.timefmt import format_datetime
from app.services.tokens import key_name, live_key, new_key, sha256_hex

KEY_PREFIX = "ld_"
# The demo key ("ld_demo_northwind_…") and generated ones (token_urlsafe) both fit.
KEY_FORMAT = re.compile(r"ld_[A-Za-z0-9_-]{20,120}")
SHOWN_PREFIX_LENGTH = 10
NAME_MAX_LENGTH = 100
LAST_USED_EVERY = timedelta(minutes=1)
DEMO_KEY_NAME = "Demo key"
# Shown and stored when the optional name is left empty.
UNNAMED = "Unnamed key"


class InvalidApiKey(DomainError):
    status_code = 401
    code = "invalid_api_key"

    def __init__(self, message: str = "The API key is missing, malformed, unknown or deleted."):
        super().__init__(message)


def hash_key(full_key: str) -> str:
    return sha256_hex(full_key)


def well_formed(full_key: str) -> bool:
    return KEY_FORMAT.fullmatch(full_key) is not None


def create_key(session: Session, actor: Actor, name: str) -> tuple[ApiKey, str]:
    """A new key for the actor's account and the full key, which is never retrievable again.
    Refused (at the name field) when the account has as many keys as its plan includes."""
    require(actor, Permission.API_KEYS_MANAGE)
    name = key_name(name, NAME_MAX_LENGTH)
    # Locked, so two keys created at once cannot both pass the limit.
    lock_account(session, actor.account_id)
    account = session.get(Account, actor.account_id)
    assert account is not None, "the actor's account exists"
    keys = limit_status(session, account, "api_keys")
    if not keys.allows(1):
        raise ValidationFailed(
            f"Account limit reached: your {get_plan(account.plan_code).name} plan includes {keys.limit_text} API keys. "
            "Delete a key or upgrade your plan to add another.",
            field="name",
        )
    full_key = new_key(KEY_PREFIX)
    key = _store(session, actor.account_id, name, full_key, created_by_user_id=actor.user_id)
    audit.record(session, actor, "api_key.create", f"Created API key “{name}” ({key.prefix}…)")
    return key, full_key


def list_keys(session: Session, actor: Actor) -> list[ApiKey]:
    """The account's keys that are not deleted, newest first."""
    require(actor, Permission.API_KEYS_MANAGE)
    return list(
        session.exec(
            select(ApiKey)
            .where(ApiKey.account_id == actor.account_id, col(ApiKey.deleted_at).is_(None))
            .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
        )
    )


@dataclass(frozen=True)
class KeyRow:
    """One key as the API Keys page shows it."""

    id: str = ""
    name: str = ""
    prefix: str = ""
    created: str = ""
    created_by: str = ""
    last_used: str = ""
    # The key's daily budget ("" for none), as the form takes it ("12.50") and as shown ("$12.50").
    daily_budget: str = ""
    daily_budget_shown: str = "None"
    # Credits the key used today and this month (days of the account's timezone, as on Usage).
    used_today: str = ""
    used_this_month: str = ""


def key_rows(session: Session, actor: Actor, now: datetime | None = None) -> list[KeyRow]:
    """The account's keys as the page shows them, dates in the account's timezone."""
    rows = list_keys(session, actor)
    timezone = account_timezone(session, actor)
    names = user_names(session, actor, {row.created_by_user_id for row in rows if row.created_by_user_id})
    used = usage.key_usage(session, actor.account_id, timezone, now)
    return [
        KeyRow(
            id=row.public_id,
            name=row.name or UNNAMED,
            prefix=f"{row.prefix}…",
            created=format_datetime(row.created_at, timezone),
            created_by=names.get(row.created_by_user_id, "—") if row.created_by_user_id else "—",
            last_used=format_datetime(row.last_used_at, timezone) if row.last_used_at else "Never",
            daily_budget=plain_dollars(row.daily_budget_cents) if row.daily_budget_cents is not None else "",
            daily_budget_shown=_budget_shown(row, now),
            used_today=format_usd(used.get(row.id or 0, (0, 0))[0]),
            used_this_month=format_usd(used.get(row.id or 0, (0, 0))[1]),
        )
        for row in rows
    ]


def _budget_shown(key: ApiKey, now: datetime | None) -> str:
    """The key's budget and what is left of it today: its own UTC day, which the Used today
    column (the account's day) may not be."""
    if key.daily_budget_cents is None:
        return "None"
    used = key.used_today_cents if key.usage_day == (now or utcnow()).astimezone(UTC).date() else 0
    left = max(key.daily_budget_cents - used - key.held_cents, 0)
    return f"{format_usd(key.daily_budget_cents)} · {format_usd(left)} left today (UTC)"


def delete_key(session: Session, actor: Actor, public_id: str, now: datetime | None = None) -> ApiKey:
    """Delete one of the actor's account's keys; the next call with it is refused."""
    require(actor, Permission.API_KEYS_MANAGE)
    key = session.exec(
        select(ApiKey).where(
            ApiKey.public_id == public_id, ApiKey.account_id == actor.account_id, col(ApiKey.deleted_at).is_(None)
        )
    ).first()
    if key is None:
        raise NotFound("No such API key.")
    key.deleted_at = now or utcnow()
    session.add(key)
    session.flush()
    audit.record(session, actor, "api_key.delete", f"Deleted API key “{key.name}” ({key.prefix}…)")
    return key


MAX_DAILY_BUDGET_CENTS = 100_000_000


def set_daily_budget(
    session: Session, actor: Actor, public_id: str, budget: str, now: datetime | None = None
) -> ApiKey:
    """Set ("12.50") or clear ("") one key's daily budget (UTC day). Its calls and holds past it
    are refused with 429 key_budget_exceeded; the account's other keys are not affected. The
    usage the key already made today (UTC) counts at once."""
    require(actor, Permission.API_KEYS_MANAGE)
    text = (budget or "").strip()
    cents: int | None = None
    if text:
        if "-" in text:
            raise ValidationFailed("The daily budget must be a positive amount.", field="daily_budget")
        cents = parse_dollars(text, "daily_budget")
        if not 0 < cents <= MAX_DAILY_BUDGET_CENTS:
            raise ValidationFailed(
                f"Enter an amount from $0.01 to {format_usd(MAX_DAILY_BUDGET_CENTS)}.", field="daily_budget"
            )
    key = session.exec(
        select(ApiKey)
        .where(ApiKey.public_id == public_id, ApiKey.account_id == actor.account_id, col(ApiKey.deleted_at).is_(None))
        .with_for_update()
    ).first()
    if key is None:
        raise NotFound("No such API key.")
    now = now or utcnow()
    if key.daily_budget_cents is None and cents is not None:
        # Counting starts with a budget: today's usage so far comes from the ledger.
        key.usage_day, key.used_today_cents = now.astimezone(UTC).date(), _used_today(session, key, now)
    key.daily_budget_cents = cents
    session.add(key)
    session.flush()
    shown = format_usd(cents) if cents is not None else "none"
    audit.record(
        session, actor, "api_key.budget", f"Set the daily budget of API key “{key.name}” ({key.prefix}…) to {shown}"
    )
    return key


def _used_today(session: Session, key: ApiKey, now: datetime) -> int:
    start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    used = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == key.account_id,
            LedgerEntry.api_key_id == key.id,
            LedgerEntry.source == "usage",
            LedgerEntry.created_at >= start,
        )
    ).one()
    return -int(used)


def authenticate(session: Session, full_key: str | None, now: datetime | None = None) -> ApiKey:
    """The live key for a presented secret, else InvalidApiKey. Records its use (see `touch_due`)."""
    key = live_key(session, ApiKey, full_key, KEY_FORMAT)
    if key is None:
        raise InvalidApiKey()
    digest = key.secret_hash
    logs.bind(account_id=key.account_id)
    now = now or utcnow()
    if touch_due(digest, now):
        session.exec(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))
        touched(digest, now)
    return key


# When each live key's last_used_at was last written by this process: the write happens at most
# once a minute per key instead of on every call. It never decides whether a key is valid.
_last_touched: dict[str, datetime] = {}


def touch_due(digest: str, now: datetime) -> bool:
    last = _last_touched.get(digest)
    return last is None or not (last <= now < last + LAST_USED_EVERY)


def touched(digest: str, now: datetime) -> None:
    """Call only once the digest is known to be a live key, so unknown keys cannot fill the memo."""
    _last_touched[digest] = now


def ensure_demo_key(session: Session, account_id: int, full_key: str) -> ApiKey:
    """Store the demo key (the DEMO_API_KEY setting) for the demo account; idempotent."""
    if not well_formed(full_key):
        raise ValidationFailed("DEMO_API_KEY must be 'ld_' followed by 20 to 120 letters, digits, '_' or '-'.")
    existing = session.exec(select(ApiKey).where(ApiKey.secret_hash == hash_key(full_key))).first()
    if existing is not None:
        return existing
    return _store(session, account_id, DEMO_KEY_NAME, full_key, created_by_user_id=None)


def _store(session: Session, account_id: int, name: str, full_key: str, created_by_user_id: int | None) -> ApiKey:
    key = ApiKey(
        account_id=account_id,
        name=name,
        prefix=full_key[:SHOWN_PREFIX_LENGTH],
        secret_hash=hash_key(full_key),
        created_by_user_id=created_by_user_id,
    )
    session.add(key)
    session.flush()
    return key
