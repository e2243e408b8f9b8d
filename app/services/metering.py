"""The metering API's rules: a call authenticated by an API key debits its account's usage credits
and gets an answer (status, JSON body). Refusals are answers too, so the caller can commit the
transaction they ran in (it holds at most the key's last-used time; a refused debit wrote nothing).

Two ways to the same result:
- `record_usage`, one transaction on any database through `ledger.debit_usage`, with the
  Idempotency-Key bookkeeping (MeteringRequest) in that transaction;
- `debit_fast_group` (PostgreSQL: per call, key lookup, conditional balance update, ledger insert
  and the stored answer of an Idempotency-Key in one statement; a group of calls pipelined in one
  round trip and one transaction) and `debit_fast_group_sqlite` (the same statements in one short
  BEGIN IMMEDIATE transaction); `debit_fast` and `debit_fast_sqlite` are groups of one. They only
  debit when every call of the group is uneventful, i.e. not refused and `ledger.after_move` would
  have nothing to start (no auto recharge, no spend notification); otherwise they change nothing
  and say so (NeedsLedger), and the caller goes through `record_usage`, which applies the
  ledger's full semantics. Measured in
  bench/metering.py: the ORM path costs ~4 ms of CPU a call, these ~0.2 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NotRequired, TypedDict, Unpack, cast

import asyncpg
from sqlalchemy import Boolean, bindparam, case, column, table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from app import logs
from app.errors import DomainError, ValidationFailed
from app.models import MeteringRequest, public_id, utcnow
from app.services import api_keys, grants, ledger
from app.services import live as live_updates
from app.services.api_keys import InvalidApiKey
from app.services.ledger import (
    AccountSuspended,
    BalanceAfter,
    DailyBudgetExceeded,
    DailyRequestLimitExceeded,
    InsufficientCredits,
    KeyBudgetExceeded,
)
from app.services.overview import overview

MAX_AMOUNT_CENTS = 100_000_000  # $1,000,000 in one call
DESCRIPTION_MAX_LENGTH = 500
DESCRIPTION_CONTROL_CHARACTERS = "description may not contain control characters other than tab and newline."
IDEMPOTENCY_KEY_MAX_LENGTH = 150
IDEMPOTENCY_KEY_RULE = (
    f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters."
)


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


class UsageCall(TypedDict):
    """A POST /usage call as the API read it: the keyword arguments of `record_usage`, `debit_fast`
    and `debit_fast_sqlite`."""

    api_key: str | None
    amount_cents: int
    description: NotRequired[str]
    idempotency_key: NotRequired[str | None]
    now: NotRequired[datetime | None]


def error_answer(error: DomainError) -> Answer:
    headers = {}
    if isinstance(error, DailyBudgetExceeded | DailyRequestLimitExceeded | KeyBudgetExceeded):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, InvalidApiKey):
        headers["WWW-Authenticate"] = "Bearer"
    return Answer(error.status_code, {"error": {"code": error.code, "message": error.message}}, headers)


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


def usage_body(entry_public_id: str, after: BalanceAfter) -> dict[str, Any]:
    return {
        "entry_id": entry_public_id,
        "balance_cents": after.balance_cents,
        "available_cents": after.available_cents,
        "used_today_cents": after.used_today_cents,
    }


def fingerprint(amount_cents: int, description: str) -> str:
    """What makes two usage calls with the same Idempotency-Key the same call."""
    return body_fingerprint({"amount_cents": amount_cents, "description": description})


def body_fingerprint(body: dict[str, Any]) -> str:
    """What makes two calls with the same Idempotency-Key the same call: their body's fields."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_call(amount_cents: int, description: str, idempotency_key: str | None) -> None:
    """The API's model checks the same; this guards other callers."""
    if type(amount_cents) is not int or not 0 < amount_cents <= MAX_AMOUNT_CENTS:
        raise ValidationFailed(f"amount_cents must be a whole number from 1 to {MAX_AMOUNT_CENTS}.")
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ValidationFailed(f"description may have at most {DESCRIPTION_MAX_LENGTH} characters.")
    if not plain_text(description):
        raise ValidationFailed(DESCRIPTION_CONTROL_CHARACTERS)
    if idempotency_key is not None and not valid_idempotency_key(idempotency_key):
        raise ValidationFailed(IDEMPOTENCY_KEY_RULE)


def shown_description(description: str, key_name: str) -> str:
    """What Balance History shows for a call: its description, else "API usage" and the key's name."""
    return description or f"API usage (key: {key_name})"


def plain_text(value: str) -> bool:
    """No control characters but tab and newlines: PostgreSQL cannot store NUL, and the others
    have no place in a line shown on Balance History."""
    return not any(ord(char) < 32 and char not in "\t\n\r" or ord(char) == 127 for char in value)


def valid_idempotency_key(value: str) -> bool:
    return 0 < len(value) <= IDEMPOTENCY_KEY_MAX_LENGTH and value.isascii() and value.isprintable()


def record_usage(
    session: Session,
    *,
    api_key: str | None,
    amount_cents: int,
    description: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Debit the key's account in the caller's transaction. With an Idempotency-Key, the first
    successful answer is stored with the debit and returned again for the same body (409 for
    another body); refusals are not stored, so a retry after a top-up or at midnight UTC can pass."""
    check_call(amount_cents, description, idempotency_key)
    now = now or utcnow()
    try:
        key = api_keys.authenticate(session, api_key, now)
    except InvalidApiKey as exc:
        return error_answer(exc)
    body_fingerprint = fingerprint(amount_cents, description)
    if idempotency_key is not None and (stored := stored_answer(session, key.account_id, idempotency_key)) is not None:
        return replay(stored, body_fingerprint)
    try:
        entry, after = ledger.debit_usage(
            session,
            account_id=key.account_id,
            amount_cents=amount_cents,
            description=shown_description(description, key.name),
            idempotency_key=(
                f"usage:{key.account_id}:{idempotency_key}" if idempotency_key is not None else _random_ledger_key()
            ),
            now=now,
            api_key_id=key.id,
        )
    except (
        AccountSuspended,
        InsufficientCredits,
        DailyBudgetExceeded,
        DailyRequestLimitExceeded,
        KeyBudgetExceeded,
    ) as refusal:
        return error_answer(refusal)
    if after is None:
        # A concurrent call with the same Idempotency-Key debited first and has committed.
        stored = stored_answer(session, key.account_id, idempotency_key or "")
        if stored is None:
            return error_answer(IdempotencyKeyReused("This Idempotency-Key was already used."))
        return replay(stored, body_fingerprint)
    answer = Answer(200, usage_body(entry.public_id, after))
    if idempotency_key is not None:
        remember(session, key.account_id, idempotency_key, body_fingerprint, answer, now)
    return answer


def remember(
    session: Session, account_id: int, idempotency_key: str, body_fingerprint: str, answer: Answer, now: datetime
) -> None:
    """Store the answer given to a call with this Idempotency-Key, for `replay` to give again."""
    session.add(
        MeteringRequest(
            account_id=account_id,
            idempotency_key=idempotency_key,
            fingerprint=body_fingerprint,
            status_code=answer.status_code,
            response_json=json.dumps(answer.body),
            created_at=now,
        )
    )
    session.flush()


def balance(session: Session, *, api_key: str | None, now: datetime | None = None) -> Answer:
    """The Overview's figures for the key's account."""
    now = now or utcnow()
    try:
        key = api_keys.authenticate(session, api_key, now)
    except InvalidApiKey as exc:
        return error_answer(exc)
    if ledger.suspended(session, key.account_id):
        return error_answer(AccountSuspended())
    figures = overview(session, key.account_id, now)
    expiry = grants.next_expiry(session, key.account_id, now)
    return Answer(
        200,
        {
            "total_credits_cents": figures.total_credits,
            "usage_this_period_cents": figures.usage_this_period,
            "remaining_credits_cents": figures.remaining_credits,
            "overage_protection_cents": figures.overage_protection,
            "used_today_cents": figures.used_today,
            "daily_budget_cents": figures.daily_budget,
            "held_cents": figures.held,
            "available_cents": figures.available_to_use,
            "next_expiry": None
            if expiry is None
            else {
                "amount_cents": expiry.amount_cents,
                "expires_at": expiry.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            },
        },
    )


def stored_answer(session: Session, account_id: int, idempotency_key: str) -> MeteringRequest | None:
    return session.exec(
        select(MeteringRequest).where(
            MeteringRequest.account_id == account_id, MeteringRequest.idempotency_key == idempotency_key
        )
    ).first()


def replay(stored: MeteringRequest, body_fingerprint: str) -> Answer:
    return _replay_fields(stored.fingerprint, stored.status_code, stored.response_json, body_fingerprint)


def _replay_fields(stored_fingerprint: str, status_code: int, response_json: str, body_fingerprint: str) -> Answer:
    if not hmac.compare_digest(stored_fingerprint, body_fingerprint):
        return error_answer(
            IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
        )
    return Answer(status_code, json.loads(response_json), replayed=True)


def _random_ledger_key() -> str:
    # Never of the form "usage:<account id>:<key>" that calls with an Idempotency-Key use.
    return f"usage:{uuid.uuid4().hex}"


# The metering row update of an uneventful usage debit, one per database, compiled once from the
# ledger's own definition of a debit (`ledger.quiet_usage_debit`: its conditions plus "ledger.after_move
# has nothing to start"). tests/integration/test_metering_fast_path.py holds it to the ledger's behaviour.
_KEY = table("k", column("key_account_id"), column("key_id"))


def _compiled(statement, dialect) -> str:
    return str(statement.compile(dialect=dialect(paramstyle="named")))


_INSERT_ENTRY = """
INSERT INTO ledger_entry (public_id, account_id, amount_cents, balance_after_cents, source, description,
                          idempotency_key, created_at, api_key_id)
"""
_INSERT_REQUEST = """
INSERT INTO metering_request (account_id, idempotency_key, fingerprint, status_code, response_json, created_at)
"""
_LOOKUP_KEY = (
    "SELECT id AS key_id, account_id AS key_account_id, secret_hash, name AS key_name,"
    " daily_budget_cents AS key_budget FROM api_key"
    " WHERE secret_hash = :digest AND deleted_at IS NULL"
)
_STORED = (
    "SELECT fingerprint, status_code, response_json FROM metering_request"
    " WHERE account_id = {account_id} AND idempotency_key = :idempotency_key"
)

# A key with a daily budget counts the call in the same statement (`ledger.key_budget_update`),
# touching its last use there when due.
_TOUCH = bindparam("touch", type_=Boolean())
_KEY_BUDGET = ledger.key_budget_update(_KEY.c.key_id, text("NOT EXISTS (SELECT FROM stored)")).values(
    last_used_at=case((_TOUCH, ledger.NOW), else_=column("last_used_at"))
)

# PostgreSQL: everything in one statement, so one round trip and no explicit transaction. The
# stored answer is built here as usage_body() builds it (available_cents as BalanceAfter's).
_PG_PARAMETERS = (
    "digest",
    "amount",
    "now",
    "today",
    "entry_id",
    "description",
    "ledger_key",
    "touch",
    "idempotency_key",
    "fingerprint",
)
_PG_FAST_DEBIT = f"""
WITH k AS ({_LOOKUP_KEY}
), stored AS ({_STORED.format(account_id="(SELECT key_account_id FROM k)")}
), touch AS (
    -- A key with a budget is touched by kb, as one statement may update a row only once.
    UPDATE api_key SET last_used_at = :now FROM k
     WHERE api_key.id = k.key_id AND :touch AND (k.key_budget IS NULL OR EXISTS (SELECT FROM stored))
), kb AS ({_compiled(_KEY_BUDGET, postgresql.dialect)}
), m AS ({
    _compiled(
        ledger.quiet_usage_debit(
            _KEY.c.key_account_id,
            text("NOT EXISTS (SELECT FROM stored)"),
            text("(k.key_budget IS NULL OR EXISTS (SELECT FROM kb))"),
        ),
        postgresql.dialect,
    )
}), entry AS ({_INSERT_ENTRY}    SELECT :entry_id, m.account_id, -:amount, m.balance_cents, 'usage',
           COALESCE(NULLIF(:description, ''), 'API usage (key: ' || k.key_name || ')'),
           COALESCE('usage:' || m.account_id || ':' || :idempotency_key, :ledger_key), :now, k.key_id
      FROM m CROSS JOIN k
), request AS ({_INSERT_REQUEST}    SELECT m.account_id, :idempotency_key, :fingerprint, 200,
           json_build_object(
               'entry_id', :entry_id::text,
               'balance_cents', m.balance_cents,
               'available_cents', GREATEST(LEAST(
                   m.balance_cents + m.overage_credit_line_cents,
                   COALESCE(m.daily_budget_cents - m.used_today_cents, m.balance_cents + m.overage_credit_line_cents)
               ) - m.held_cents, 0),
               'used_today_cents', m.used_today_cents
           )::text,
           :now
      FROM m
     WHERE :idempotency_key IS NOT NULL
)
SELECT k.secret_hash, m.balance_cents, m.used_today_cents, m.overage_credit_line_cents, m.daily_budget_cents,
       m.held_cents, stored.fingerprint, stored.status_code, stored.response_json, k.key_account_id,
       -- A live key's call that was neither debited nor a replay needs record_usage: dividing by
       -- zero then fails the statement, and with it the whole group's transaction.
       1 / CASE WHEN k.key_id IS NOT NULL AND m.account_id IS NULL AND stored.fingerprint IS NULL
                THEN 0 ELSE 1 END AS quiet
FROM (SELECT) AS one LEFT JOIN k ON true LEFT JOIN m ON true LEFT JOIN stored ON true
"""
# asyncpg takes $1, $2...; the types follow from the columns each parameter meets.
FAST_DEBIT_SQL = re.sub(
    r"(?<!:):([a-z_]+)\b", lambda match: f"${_PG_PARAMETERS.index(match.group(1)) + 1}", _PG_FAST_DEBIT
)

# SQLite: no data-modifying CTEs, but statements are function calls, not round trips.
_SQLITE_TOUCH = "UPDATE api_key SET last_used_at = :now WHERE id = :key_id"
_SQLITE_STORED = _STORED.format(account_id=":account_id")
_SQLITE_DEBIT = _compiled(ledger.quiet_usage_debit(ledger.ACCOUNT), sqlite.dialect)
_SQLITE_KEY_BUDGET = _compiled(ledger.key_budget_update(ledger.KEY), sqlite.dialect)
_SQLITE_ENTRY = (
    _INSERT_ENTRY
    + "VALUES (:entry_id, :account_id, -:amount, :balance, 'usage', :description, :ledger_key, :now, :key_id)"
)
_SQLITE_REQUEST = _INSERT_REQUEST + "VALUES (:account_id, :idempotency_key, :fingerprint, 200, :response_json, :now)"


class NeedsLedger(Exception):
    """A call of the group is not an uneventful debit or replay (refused, no metering row yet, a
    recharge or notification to start, a concurrent call with its Idempotency-Key): nothing of
    the group was written, and its calls go through `record_usage` one by one."""


def _in_lock_order(calls: Sequence[_FastCall]) -> list[int]:
    """The group's calls by key (one key's calls in arrival order): the rows a group locks are
    then locked in one order in every process, so two processes' groups never deadlock."""
    return sorted(range(len(calls)), key=lambda index: calls[index].digest)


async def debit_fast_group(connection, usages: Sequence[UsageCall]) -> list[tuple[Answer, int | None]]:
    """PostgreSQL (an asyncpg connection, not in a transaction): every call of the group in one
    round trip and one transaction (asyncpg's fetchmany pipelines the statements behind a single
    Sync, so they commit together or not at all): the uneventful debits, with their stored answers,
    and the replays. Each call's (answer, account id); raises NeedsLedger when any call needs
    `record_usage`."""
    calls = [_FastCall.make(**usage) for usage in usages]
    answered: list[tuple[Answer, int | None]] = [(error_answer(InvalidApiKey()), None)] * len(calls)
    positions = [index for index, call in enumerate(calls) if call is not None]
    live = [cast(_FastCall, calls[index]) for index in positions]
    order = _in_lock_order(live)
    if live:
        try:
            rows = await connection.fetchmany(FAST_DEBIT_SQL, [live[index].parameters() for index in order])
        except (asyncpg.UniqueViolationError, asyncpg.DivisionByZeroError):
            raise NeedsLedger() from None
        for index, row in zip(order, rows, strict=True):
            call = live[index]
            after = _after(*row[1:6]) if row["balance_cents"] is not None else None
            answer = call.answer(row["secret_hash"], after, row[6:9] if row[6] else None)
            answered[positions[index]] = (cast(Answer, answer), row["key_account_id"])
            if after is not None:
                live_updates.changed(row["key_account_id"])
    return answered


async def debit_fast(connection, **usage: Unpack[UsageCall]) -> Answer | None:
    """`debit_fast_group` of one call; None when it needs `record_usage` (nothing was debited)."""
    try:
        ((answer, account_id),) = await debit_fast_group(connection, [usage])
    except NeedsLedger:
        return None
    logs.bind(account_id=account_id)
    return answer


def debit_fast_group_sqlite(connection, usages: Sequence[UsageCall]) -> list[tuple[Answer, int | None]]:
    """SQLite (a DB-API connection of the app's engine, in autocommit mode as app/db.py sets it up):
    the same as `debit_fast_group` in one BEGIN IMMEDIATE transaction of plain statements. Raises
    sqlite3.OperationalError when the write lock is not had within the connection's busy timeout."""
    calls = [_FastCall.make(**usage) for usage in usages]
    cursor = connection.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    try:
        answered = [
            (error_answer(InvalidApiKey()), None) if call is None else _debit_sqlite(cursor, call) for call in calls
        ]
        cursor.execute("COMMIT")
    except sqlite3.IntegrityError:
        # A ledger entry with this Idempotency-Key but no stored answer: record_usage says why.
        cursor.execute("ROLLBACK")
        raise NeedsLedger() from None
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    finally:
        cursor.close()
    for answer, account_id in answered:
        if account_id is not None and answer is not None and answer.status_code == 200 and not answer.replayed:
            live_updates.changed(account_id)
    return [(cast(Answer, answer), account_id) for answer, account_id in answered]


def debit_fast_sqlite(connection, **usage: Unpack[UsageCall]) -> Answer | None:
    """`debit_fast_group_sqlite` of one call; None when it needs `record_usage`."""
    try:
        ((answer, account_id),) = debit_fast_group_sqlite(connection, [usage])
    except NeedsLedger:
        return None
    logs.bind(account_id=account_id)
    return answer


def _debit_sqlite(cursor, call: _FastCall) -> tuple[Answer | None, int | None]:
    key = cursor.execute(_LOOKUP_KEY, {"digest": call.digest}).fetchone()
    if key is None:
        return call.answer(None), None
    key_id, account_id, _, key_name, key_budget = key
    # SQLAlchemy stores SQLite times as naive UTC text.
    values = {
        "key_id": key_id,
        "key": key_id,
        "account_id": account_id,
        "account": account_id,
        "now": call.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "today": call.today.isoformat(),
        "amount": call.amount_cents,
        "description": shown_description(call.description, key_name),
        "entry_id": call.entry_id,
        "idempotency_key": call.idempotency_key,
        "fingerprint": call.fingerprint,
        "ledger_key": call.ledger_key if call.idempotency_key is None else f"usage:{account_id}:{call.idempotency_key}",
    }
    if call.touch:
        cursor.execute(_SQLITE_TOUCH, values)
    stored = after = None
    if call.idempotency_key is not None:
        stored = cursor.execute(_SQLITE_STORED, values).fetchone()
    if stored is None:
        if key_budget is not None and cursor.execute(_SQLITE_KEY_BUDGET, values).fetchone() is None:
            raise NeedsLedger()
        row = cursor.execute(_SQLITE_DEBIT, values).fetchone()
        if row is None:
            raise NeedsLedger()
        after = _after(*row[1:])
        cursor.execute(_SQLITE_ENTRY, {**values, "balance": after.balance_cents})
        if call.idempotency_key is not None:
            response_json = json.dumps(usage_body(call.entry_id, after))
            cursor.execute(_SQLITE_REQUEST, {**values, "response_json": response_json})
    return call.answer(key[2], after, stored), account_id


@dataclass(frozen=True)
class _FastCall:
    amount_cents: int
    description: str
    idempotency_key: str | None
    digest: str
    now: datetime
    today: date
    touch: bool
    entry_id: str
    ledger_key: str
    fingerprint: str | None

    @classmethod
    def make(
        cls,
        *,
        api_key: str | None,
        amount_cents: int,
        description: str = "",
        idempotency_key: str | None = None,
        now: datetime | None = None,
    ) -> _FastCall | None:
        check_call(amount_cents, description, idempotency_key)
        if not api_key or not api_keys.well_formed(api_key):
            return None
        now = now or utcnow()
        digest = api_keys.hash_key(api_key)
        touch = api_keys.touch_due(digest, now)
        body_fingerprint = fingerprint(amount_cents, description) if idempotency_key is not None else None
        entry_id = public_id("txn", 14)
        # Unique as the entry's public id is, and never of the form "usage:<account id>:<key>";
        # a uuid4 per call cost 18 % of the server's CPU under load (py-spy, bench/metering.py).
        ledger_key = f"usage:{entry_id}"
        return cls(
            amount_cents,
            description,
            idempotency_key,
            digest,
            now,
            ledger.utc_day(now),
            touch,
            entry_id,
            ledger_key,
            body_fingerprint,
        )

    def parameters(self) -> tuple:
        """FAST_DEBIT_SQL's parameters, in _PG_PARAMETERS' order."""
        return (
            self.digest,
            self.amount_cents,
            self.now,
            self.today,
            self.entry_id,
            self.description,
            self.ledger_key,
            self.touch,
            self.idempotency_key,
            self.fingerprint,
        )

    def answer(
        self, found_hash: str | None, after: BalanceAfter | None = None, stored: Sequence[Any] | None = None
    ) -> Answer | None:
        """`found_hash`: the live key's stored hash, if any; `after`: the metering row after the
        debit, None when nothing was debited; `stored`: (fingerprint, status, JSON) of a replay."""
        if found_hash is None or not hmac.compare_digest(found_hash, self.digest):
            return error_answer(InvalidApiKey())
        if self.touch:
            api_keys.touched(self.digest, self.now)
        if stored is not None:
            stored_fingerprint, status_code, response_json = stored
            return _replay_fields(stored_fingerprint, status_code, response_json, self.fingerprint or "")
        return None if after is None else Answer(200, usage_body(self.entry_id, after))


def _after(
    balance_cents: int,
    used_today_cents: int,
    overage_credit_line_cents: int,
    daily_budget_cents: int | None,
    held_cents: int,
):
    return BalanceAfter(balance_cents, used_today_cents, overage_credit_line_cents, daily_budget_cents, held_cents)
