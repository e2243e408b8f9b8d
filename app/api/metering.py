"""The metering API (/api/v1): POST /usage debits the API key's account, GET /balance reads it.

Database access, chosen by measurement (bench/metering.py, README): a call is debited on the
event loop, on PostgreSQL in one autocommitted statement on an asyncpg pool (`metering.debit_fast`),
on SQLite in one short transaction on a kept connection that never waits for the write lock
(`metering.debit_fast_sqlite`). Whatever those leave to it runs `metering.record_usage` in one
transaction on the app's sync engine in a thread; SQLite's thread work all goes to one thread,
which serializes it without polling SQLite's write lock."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import asyncpg
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError, field_validator
from pydantic_core import ErrorDetails
from sqlalchemy.engine import URL, Engine

from app import metrics
from app.api.body import BodyTooLarge, limited_body
from app.config import get_settings
from app.db import get_engine, transaction
from app.errors import DomainError, ValidationFailed
from app.models import utcnow
from app.services import metering
from app.services.metering import Answer
from app.services.plans import PLANS

T = TypeVar("T")


class ApiError(BaseModel):
    code: str = Field(description="Stable, machine-readable reason.", examples=["insufficient_credits"])
    message: str = Field(description="What happened, for people.")


class ErrorResponse(BaseModel):
    error: ApiError


def _whole_number(value: Any) -> Any:
    """JSON does not tell 25 from 25.0, and JSON Schema counts both as integers: a whole float is
    taken as its integer; strings, booleans and fractions stay refused (StrictInt)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class UsageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(
        gt=0, le=metering.MAX_AMOUNT_CENTS, description="Credits to debit, in US cents.", examples=[25]
    )
    description: str = Field(
        default="",
        max_length=metering.DESCRIPTION_MAX_LENGTH,
        description="Shown on the account's Balance History. Plain text: no control characters but tab and newline.",
        json_schema_extra={"pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"},
        examples=["1,000 tokens"],
    )

    @field_validator("description")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        if not metering.plain_text(value):
            raise ValueError(metering.DESCRIPTION_CONTROL_CHARACTERS)
        return value


class UsageResponse(BaseModel):
    entry_id: str = Field(description="Public id of the ledger entry of this debit.", examples=["txn_8K2M4Q0ZV1XG7B"])
    balance_cents: int = Field(description="Remaining credits after the debit; negative when using overage protection.")
    available_cents: int = Field(
        description="The most the next call may debit: balance plus overage protection, capped by what is left of "
        "today's budget. A call of this amount passes, one cent more is refused."
    )
    used_today_cents: int = Field(description="Usage debited today (UTC day), this call included.")


class BalanceResponse(BaseModel):
    total_credits_cents: int = Field(description="All credits purchased or granted.")
    usage_this_period_cents: int = Field(description="Usage not yet invoiced.")
    remaining_credits_cents: int = Field(
        description="Total credits minus usage; may be negative down to the overage protection."
    )
    overage_protection_cents: int = Field(description="How far usage may go below zero, billed on the next invoice.")
    used_today_cents: int = Field(description="Usage debited today (UTC day).")
    daily_budget_cents: int | None = Field(description="Today's spend limit; null when spend management is off.")
    available_cents: int = Field(
        description="The most a call may debit now: remaining credits plus overage protection, capped by what is "
        "left of today's budget. A call of this amount passes, one cent more is refused."
    )


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description, **({"headers": headers} if headers else {})}


INVALID_KEY = _error("Missing, malformed, unknown or deleted API key (code invalid_api_key).")
MALFORMED = _error("Malformed request: body or Idempotency-Key header (code validation_error).")
UNAVAILABLE = _error(
    "The database is unavailable (code database_unavailable): retry shortly. A debit may have happened, so "
    "retry with the same Idempotency-Key.",
    {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
)


def render(answer: Answer) -> Response:
    headers = dict(answer.headers)
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(json.dumps(answer.body), answer.status_code, headers, media_type="application/json")


def _validation_answer(errors: Sequence[ErrorDetails]) -> Answer:
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error.get("msg", "invalid"))
    return metering.error_answer(ValidationFailed("; ".join(parts) or "The request is malformed."))


class _MeteringRoute(APIRoute):
    """Malformed requests get the API's error shape instead of FastAPI's default 422 body."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return render(_validation_answer(list(exc.errors())))

        return route


MAX_BODY_BYTES = 16 * 1024  # a usage call is under 1 KB; this refuses floods without reading them


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"

    def __init__(self):
        super().__init__("Send the body as JSON, with Content-Type: application/json.")


class _UsageRoute(APIRoute):
    """POST /usage, the hot path. FastAPI documents it from the endpoint's signature, but its
    generic request solving costs about as much CPU as the debit itself (bench/metering.py); this
    reads the same inputs (JSON body, bearer credentials, Idempotency-Key, engine dependency) with
    the same rules and runs the same debit."""

    def get_route_handler(self) -> Callable:
        async def route(request: Request) -> Response:
            try:
                answer, amount_cents = await usage_answer(request)
            except Exception:  # answered 503 (database unavailable) or 500 by the API's handlers
                metrics.record_metering("error", 0)
                raise
            # The one place a metering call's outcome is known: refusals before the debit too.
            outcome = (
                "replayed" if answer.replayed else answer.body["error"]["code"] if answer.status_code != 200 else "ok"
            )
            metrics.record_metering(outcome, amount_cents if outcome == "ok" else 0)
            return render(answer)

        return route


async def usage_answer(request: Request) -> tuple[Answer, int]:
    """POST /usage's answer, and the amount asked for (0 when the body is refused)."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json":
        return metering.error_answer(UnsupportedMediaType()), 0
    try:
        body = UsageRequest.model_validate_json(await limited_body(request, MAX_BODY_BYTES))
    except BodyTooLarge as exc:
        return metering.error_answer(exc), 0
    except ValidationError as exc:
        return _validation_answer(exc.errors(include_url=False)), 0
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme.lower() == "bearer" and token else None
    )
    answer = await debit(
        body,
        credentials,
        request.headers.get("idempotency-key"),
        await _resolve(request, metering_engine),
        await _resolve(request, metering_clock),
    )
    return answer, body.amount_cents


router = APIRouter(prefix="/api/v1", tags=["Metering"], route_class=_MeteringRoute)
bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key of the account (Add API Key on the API Keys page), sent as `Authorization: Bearer ld_…`.",
    auto_error=False,
)


async def metering_engine() -> Engine:
    """A dependency, so tests can point the API at their database (async: no thread hop)."""
    return get_engine()


async def metering_clock() -> datetime:
    """A dependency, so tests can move the time across a UTC midnight."""
    return utcnow()


async def _resolve(request: Request, dependency: Callable) -> Any:
    value = request.app.dependency_overrides.get(dependency, dependency)()
    return await value if inspect.isawaitable(value) else value


async def record_usage(
    body: UsageRequest,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    idempotency_key: str | None = Header(
        default=None,
        alias="Idempotency-Key",
        description=f"Up to {metering.IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, unique per call.",
        # Documentation only (the route reads the header itself, with the same rule); HTTP strips
        # spaces around a header value, so the document does not offer them.
        min_length=1,
        max_length=metering.IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[!-~]([ -~]*[!-~])?$",
    ),
    engine: Engine = Depends(metering_engine),
    now: datetime = Depends(metering_clock),
) -> Response:
    """What FastAPI documents; _UsageRoute serves it through usage_answer."""
    return render(await debit(body, credentials, idempotency_key, engine, now))


async def debit(
    body: UsageRequest,
    credentials: HTTPAuthorizationCredentials | None,
    idempotency_key: str | None,
    engine: Engine,
    now: datetime,
) -> Answer:
    if idempotency_key is not None and not metering.valid_idempotency_key(idempotency_key):
        return metering.error_answer(ValidationFailed(metering.IDEMPOTENCY_KEY_RULE))
    call: metering.UsageCall = {
        "api_key": credentials.credentials if credentials else None,
        "amount_cents": body.amount_cents,
        "description": body.description,
        "idempotency_key": idempotency_key,
        "now": now,
    }
    sqlite_busy = False
    if engine.dialect.name == "postgresql":
        pool = await _pool(engine)
        async with pool.acquire() as connection:
            answer = await metering.debit_fast(connection, **call)
        if answer is not None:
            return answer
    else:
        try:
            answer = metering.debit_fast_sqlite(_sqlite_loop_connection(engine).driver_connection, **call)
        except sqlite3.OperationalError:
            sqlite_busy = True
        else:
            if answer is not None:
                return answer

    def run() -> Answer:
        if sqlite_busy:
            connection = engine.raw_connection()
            try:
                answer = metering.debit_fast_sqlite(connection.driver_connection, **call)
            finally:
                connection.close()
            if answer is not None:
                return answer
        with transaction(engine) as session:
            return metering.record_usage(session, **call)

    return await _in_thread(engine, run)


_DAILY_REQUESTS = ", ".join(
    f"{plan.name} {limit:,}" for plan in PLANS.values() if (limit := plan.limit("daily_requests")) is not None
)

router.add_api_route(
    "/usage",
    record_usage,
    methods=["POST"],
    route_class_override=_UsageRoute,
    summary="Record usage",
    description=(
        "Debits `amount_cents` from the usage credits of the API key's account. The daily budget is a cap: the "
        "call is refused, and no money moves, when it would take today's (UTC) usage past the budget (429, with "
        "`Retry-After` to midnight UTC; a call of exactly what is left passes) or the balance below minus the "
        "overage protection (402). Each plan allows a number of calls per UTC day "
        f"({_DAILY_REQUESTS}; the Info page shows today's count): past it a call is refused with 429 "
        "`daily_request_limit_exceeded` and `Retry-After` to midnight UTC, and no money moves. "
        "`available_cents` in the answer (and in `GET /balance`) is the most the next "
        "call may debit. Send an `Idempotency-Key` to retry "
        "safely: the same key with the same body returns the first answer (header `Idempotent-Replayed: true`) "
        "and debits once; with another body it is refused (409). Refusals are not remembered, so a retry "
        "with the same key can pass once credits were added or the day has turned."
    ),
    response_model=UsageResponse,
    responses={
        401: INVALID_KEY,
        402: _error("Not enough usage credits (code insufficient_credits)."),
        409: _error("The Idempotency-Key was used with another body (code idempotency_key_reused)."),
        413: _error(f"The body is larger than {MAX_BODY_BYTES} bytes (code payload_too_large)."),
        415: _error("The body is not sent as application/json (code unsupported_media_type)."),
        422: MALFORMED,
        429: _error(
            "The call would take today's usage past the daily budget (code daily_budget_exceeded; the message "
            "says what is left of it today), or the plan's API requests per UTC day are used up (code "
            "daily_request_limit_exceeded; the message names the limit).",
            {"Retry-After": {"description": "Seconds until midnight UTC.", "schema": {"type": "integer"}}},
        ),
        503: UNAVAILABLE,
    },
)


@router.get(
    "/balance",
    summary="Read the balance",
    description="The figures of the Billing Overview for the API key's account, in US cents.",
    response_model=BalanceResponse,
    responses={401: INVALID_KEY, 503: UNAVAILABLE},
)
async def read_balance(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    engine: Engine = Depends(metering_engine),
    now: datetime = Depends(metering_clock),
) -> Response:
    api_key = credentials.credentials if credentials else None

    def run() -> Answer:
        with transaction(engine) as session:
            return metering.balance(session, api_key=api_key, now=now)

    return render(await _in_thread(engine, run))


# One thread for SQLite: its writes are serialized anyway, and waiting in this queue is cheaper
# than every thread polling SQLite's write lock (PERF-NOTES).
_sqlite_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-sqlite")
# SQLite on the event loop (PERF-NOTES: a kept connection there is ~6x faster than threads): one
# connection of the app's engine per engine, which never waits for the write lock, so the loop
# never blocks on another writer; when SQLite is busy the call queues for the thread instead.
_sqlite_loop_connections: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()


def _sqlite_loop_connection(engine: Engine):
    connection = _sqlite_loop_connections.get(engine)
    if connection is None:
        connection = engine.raw_connection()  # kept checked out: the pool's pragmas, then no waiting
        cast(sqlite3.Connection, connection.driver_connection).execute("PRAGMA busy_timeout = 0")
        _sqlite_loop_connections[engine] = connection
    return connection


async def _in_thread(engine: Engine, work: Callable[[], T]) -> T:
    if engine.dialect.name == "sqlite":
        # In this request's context, so that its log records and the jobs it enqueues carry its id.
        return await asyncio.get_running_loop().run_in_executor(_sqlite_thread, contextvars.copy_context().run, work)
    return await run_in_threadpool(work)


# asyncpg pools belong to the event loop that made them: one per loop and database.
_pools: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future] = {}


@functools.cache
def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _pool(engine: Engine) -> asyncpg.Pool:
    loop = asyncio.get_running_loop()
    dsn = _asyncpg_dsn(engine.url)
    pool = _pools.get((loop, dsn))
    if pool is None:
        pool = _pools[(loop, dsn)] = asyncio.ensure_future(
            # METERING_POOL_SIZE, per process. Measured (bench/metering.py): with 8 or 16 connections
            # PostgreSQL's commits queue behind each other's WAL flushes; 32 let it group them.
            asyncpg.create_pool(dsn, min_size=1, max_size=get_settings().metering_pool_size, reset=_keep_session)
        )
    try:
        return await asyncio.shield(pool)
    except BaseException:
        if pool.done():
            _pools.pop((loop, dsn), None)
        raise


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """The one statement run on these connections changes no session state, so asyncpg's reset
    query (RESET ALL, UNLISTEN...: a round trip on every release) is skipped; asyncpg still
    rolls back a transaction left open."""


async def close_pools() -> None:
    """Close this event loop's pools (the API's lifespan, i.e. tests; the app keeps them)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _pools if key[0] is loop]:
        pool = _pools.pop(key)
        if pool.done() and not pool.cancelled() and pool.exception() is None:
            await pool.result().close()
