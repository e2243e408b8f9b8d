"""The metering API (/api/v1): POST /usage and POST /usage/batch debit the API key's account, GET
/balance reads it; POST /holds reserves credits for a long-running call, POST
/holds/{hold_id}/capture and /release settle the hold.

The lean path: these are served by `serve`, a plain ASGI handler that the backend's
outermost layer (`app.api.MeteringFirst`, and `LedgerdeskAPI` itself where create_api() is served
alone) calls before any framework middleware or routing. It reads the headers it needs, reads the
body with its cap, decodes and validates it with msgspec (Structs built once, at import) and writes
the JSON answer itself; the routes below only document these paths for the OpenAPI document and
for the 405s of other methods.

Database access, chosen by measurement (bench/metering.py, README): calls are debited on the
event loop by group commit (`_GroupCommit`): the calls that arrive together in this process go
to the database together, on PostgreSQL pipelined in one round trip and one transaction on an
asyncpg connection (`metering.debit_fast_group`), on SQLite in one short transaction on a kept
connection that never waits for the write lock (`metering.debit_fast_group_sqlite`). A group
with a call those leave to the ledger is debited call by call (`_GroupCommit._one_by_one`), and
what the fast statements leave runs `metering.record_usage` in one transaction on the app's sync
engine in a thread; SQLite's thread work all goes to one thread, which serializes it without
polling SQLite's write lock."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import sqlite3
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import asyncpg
import msgspec
from fastapi import APIRouter, Depends, Header, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt
from sqlalchemy.engine import URL, Engine
from starlette.types import Receive, Scope, Send

from app import logs, metrics
from app.api import unavailable
from app.api.body import BodyTooLarge
from app.api.request_log import RequestContextMiddleware
from app.config import get_settings
from app.db import get_engine, transaction
from app.errors import DomainError, ValidationFailed
from app.models import utcnow
from app.services import holds, metering
from app.services.metering import Answer
from app.services.plans import PLANS

if TYPE_CHECKING:
    from fastapi import FastAPI

T = TypeVar("T")
log = logging.getLogger("ledgerdesk.api")


# --- The documented contract (OpenAPI; pydantic models, read by FastAPI only) ---------------


class ApiError(BaseModel):
    code: str = Field(description="Stable, machine-readable reason.", examples=["insufficient_credits"])
    message: str = Field(description="What happened, for people.")


class ErrorResponse(BaseModel):
    error: ApiError


def _whole_number(value: Any) -> Any:
    """JSON does not tell 25 from 25.0, and JSON Schema counts both as integers: a whole float is
    taken as its integer; strings, booleans and fractions stay refused (StrictInt)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# HTTP strips spaces around a header value, so the header's pattern does not offer them.
_IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"


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


class UsageEvent(UsageRequest):
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=metering.IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=_IDEMPOTENCY_KEY_PATTERN,
        description="As POST /usage's Idempotency-Key header: the same key and body get the first answer again.",
    )


MAX_BATCH_EVENTS = 100


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[UsageEvent] = Field(
        min_length=1, description=f"1 to {MAX_BATCH_EVENTS} usage events, applied in this order."
    )


class UsageResponse(BaseModel):
    entry_id: str = Field(description="Public id of the ledger entry of this debit.", examples=["txn_8K2M4Q0ZV1XG7B"])
    balance_cents: int = Field(description="Remaining credits after the debit; negative when using overage protection.")
    available_cents: int = Field(
        description="The most the next call may debit: balance plus overage protection, capped by what is left of "
        "today's budget. A call of this amount passes, one cent more is refused."
    )
    used_today_cents: int = Field(description="Usage debited today (UTC day), this call included.")


class BatchResponse(BaseModel):
    results: list[UsageResponse | ErrorResponse] = Field(
        description="One per event, in order: what POST /usage would have answered it alone (its body)."
    )


class NextExpiry(BaseModel):
    amount_cents: int = Field(description="What is left of the credit grants expiring then (as last allocated).")
    expires_at: datetime = Field(description="When they expire (UTC).")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(
        gt=0, le=metering.MAX_AMOUNT_CENTS, description="Credits to reserve, in US cents.", examples=[500]
    )
    ttl_seconds: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(
        default=holds.DEFAULT_TTL_SECONDS,
        gt=0,
        le=holds.MAX_TTL_SECONDS,
        description="How long the hold lasts; once it expires it releases itself.",
        examples=[600],
    )
    description: str = Field(
        default="",
        max_length=metering.DESCRIPTION_MAX_LENGTH,
        description="Shown on Balance History with the captured usage. Plain text, as POST /usage's.",
        json_schema_extra={"pattern": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"},
        examples=["Video render"],
    )


class CaptureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(
        gt=0,
        le=metering.MAX_AMOUNT_CENTS,
        description="Credits to debit, in US cents: at most the held amount (more is refused, 422).",
        examples=[420],
    )


class HoldResponse(BaseModel):
    hold_id: str = Field(description="The hold's id, for capture and release.", examples=["hold_8K2M4Q0ZV1XG7B"])
    status: str = Field(description="`open`.", examples=["open"])
    amount_cents: int = Field(description="Credits reserved.")
    expires_at: str = Field(description="When the hold releases itself if not captured (ISO 8601, UTC).")
    balance_cents: int = Field(description="Remaining credits (a hold moves none).")
    held_cents: int = Field(description="Credits reserved by the account's open holds, this one included.")
    available_cents: int = Field(description="The most a call may debit now, open holds excluded.")


class ClosedHoldResponse(BaseModel):
    hold_id: str
    status: str = Field(description="`captured` or `released`.", examples=["captured"])
    captured_cents: int = Field(description="Credits debited (0 for a release).")
    released_cents: int = Field(description="Credits given back.")
    entry_id: str | None = Field(description="Public id of the capture's usage ledger entry; null for a release.")
    balance_cents: int = Field(description="Remaining credits after it.")
    held_cents: int = Field(description="Credits still reserved by the account's open holds.")
    available_cents: int = Field(description="The most a call may debit now, open holds excluded.")
    used_today_cents: int = Field(description="Usage debited today (UTC day).")


class BalanceResponse(BaseModel):
    total_credits_cents: int = Field(description="All credits purchased or granted.")
    usage_this_period_cents: int = Field(description="Usage not yet invoiced.")
    remaining_credits_cents: int = Field(
        description="Total credits minus usage; may be negative down to the overage protection."
    )
    overage_protection_cents: int = Field(description="How far usage may go below zero, billed on the next invoice.")
    used_today_cents: int = Field(description="Usage debited today (UTC day).")
    daily_budget_cents: int | None = Field(description="Today's spend limit; null when spend management is off.")
    held_cents: int = Field(description="Credits reserved by open holds (POST /holds).")
    available_cents: int = Field(
        description="The most a call may debit now: remaining credits plus overage protection, capped by what is "
        "left of today's budget, less what open holds reserve. A call of this amount passes, one cent more is "
        "refused."
    )
    next_expiry: NextExpiry | None = Field(
        description="The soonest expiry of promotional or granted credits that have something left; null when none "
        "expires. Debits use those credits first, so the amount is what usage has not used yet (updated every minute)."
    )


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description, **({"headers": headers} if headers else {})}


MAX_BODY_BYTES = 16 * 1024  # a usage call is under 1 KB; this refuses floods without reading them
MAX_BATCH_BYTES = 256 * 1024
INVALID_KEY = _error("Missing, malformed, unknown or deleted API key (code invalid_api_key).")
SUSPENDED = _error("An operator suspended the account (code account_suspended); nothing is debited.")
MALFORMED = _error("Malformed request: body or Idempotency-Key header (code validation_error).")
NOT_JSON = _error("The body is not sent as application/json (code unsupported_media_type).")
UNAVAILABLE = _error(
    "The database is unavailable (code database_unavailable): retry shortly. A debit may have happened, so "
    "retry with the same Idempotency-Key.",
    {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
)
REFUSED_FOR_TODAY = _error(
    "The call would take today's usage past the daily budget (code daily_budget_exceeded; the message "
    "says what is left of it today), or past the API key's own daily budget (code key_budget_exceeded; the "
    "account's other keys keep working), or the plan's API requests per UTC day are used up (code "
    "daily_request_limit_exceeded; the message names the limit).",
    {"Retry-After": {"description": "Seconds until midnight UTC.", "schema": {"type": "integer"}}},
)
# What a call that may debit or hold answers besides success.
DEBIT_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: INVALID_KEY,
    402: _error("Not enough usage credits (code insufficient_credits)."),
    403: SUSPENDED,
    409: _error("The Idempotency-Key was used with another body (code idempotency_key_reused)."),
    413: _error(f"The body is larger than {MAX_BODY_BYTES} bytes (code payload_too_large)."),
    415: NOT_JSON,
    422: MALFORMED,
    429: REFUSED_FOR_TODAY,
    503: UNAVAILABLE,
}


def _idempotency_key(unique_per: str) -> Any:
    return Header(
        default=None,
        alias="Idempotency-Key",
        description=f"Up to {metering.IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, unique per {unique_per}.",
        min_length=1,
        max_length=metering.IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=_IDEMPOTENCY_KEY_PATTERN,
    )


_DAILY_REQUESTS = ", ".join(
    f"{plan.name} {limit:,}" for plan in PLANS.values() if (limit := plan.limit("daily_requests")) is not None
)

router = APIRouter(prefix="/api/v1", tags=["Metering"])
bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key of the account (Add API Key on the API Keys page), sent as `Authorization: Bearer ld_…`.",
    auto_error=False,
)


def _served_by_the_lean_path() -> Any:
    raise RuntimeError("The metering API is served by app.api.metering.serve before FastAPI routes a request.")


@router.post(
    "/usage",
    summary="Record usage",
    description=(
        "Debits `amount_cents` from the usage credits of the API key's account. The daily budget is a cap: the "
        "call is refused, and no money moves, when it would take today's (UTC) usage past the budget (429, with "
        "`Retry-After` to midnight UTC; a call of exactly what is left passes) or the balance below minus the "
        "overage protection (402). Each plan allows a number of calls per UTC day "
        f"({_DAILY_REQUESTS}; the Info page shows today's count): past it a call is refused with 429 "
        "`daily_request_limit_exceeded` and `Retry-After` to midnight UTC, and no money moves. "
        "An API key may have a daily budget of its own (API Keys page): past it the key's calls are refused "
        "with 429 `key_budget_exceeded` and `Retry-After` to midnight UTC, and the account's other keys keep "
        "working. `available_cents` in the answer (and in `GET /balance`) is the most the next "
        "call may debit. Send an `Idempotency-Key` to retry "
        "safely: the same key with the same body returns the first answer (header `Idempotent-Replayed: true`) "
        "and debits once; with another body it is refused (409). Refusals are not remembered, so a retry "
        "with the same key can pass once credits were added or the day has turned."
    ),
    response_model=UsageResponse,
    responses=DEBIT_ANSWERS,
)
def record_usage(
    body: UsageRequest,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    idempotency_key: str | None = _idempotency_key("call"),
) -> UsageResponse:
    return _served_by_the_lean_path()


@router.post(
    "/usage/batch",
    summary="Record usage in a batch",
    description=(
        f"Up to {MAX_BATCH_EVENTS} usage events in one request, for the API key's account. Each event is applied "
        "in order as if it were sent alone to `POST /usage` (its `idempotency_key` as that call's Idempotency-Key), "
        "and `results` holds what that call would have answered, one per event in order: the usage fields or "
        "the error object (`insufficient_credits`, `account_suspended`, `daily_budget_exceeded`, "
        "`key_budget_exceeded`, `daily_request_limit_exceeded`, "
        "`idempotency_key_reused`). The request is answered 200 whatever its events' results; a malformed "
        "event refuses the whole request (422) and applies nothing."
    ),
    response_model=BatchResponse,
    responses={
        401: INVALID_KEY,
        413: _error(
            f"More than {MAX_BATCH_EVENTS} events, or a body larger than {MAX_BATCH_BYTES} bytes (code "
            "payload_too_large); nothing is applied."
        ),
        415: NOT_JSON,
        422: _error("A malformed body or event (code validation_error); nothing is applied."),
        503: UNAVAILABLE,
    },
)
def record_usage_batch(
    body: BatchRequest, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> BatchResponse:
    return _served_by_the_lean_path()


@router.get(
    "/balance",
    summary="Read the balance",
    description="The figures of the Billing Overview for the API key's account, in US cents.",
    response_model=BalanceResponse,
    responses={401: INVALID_KEY, 403: SUSPENDED, 503: UNAVAILABLE},
)
def read_balance(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> BalanceResponse:
    return _served_by_the_lean_path()


_HOLD_ID = Path(description="The hold's id, as POST /holds answered it.", examples=["hold_8K2M4Q0ZV1XG7B"])


@router.post(
    "/holds",
    summary="Hold credits",
    status_code=201,
    description=(
        "Reserves `amount_cents` of the API key's account for a long-running call, for `ttl_seconds` (1 to "
        f"{holds.MAX_TTL_SECONDS:,}, default {holds.DEFAULT_TTL_SECONDS}). Refused as `POST /usage` of the amount "
        "would be (402, 403, 429 with `Retry-After`), and nothing is held then. While open, the hold is not "
        "available to use: `available_cents` everywhere excludes it, and other calls and holds may use only what "
        "it leaves (of the balance and of today's budgets). Capture it when the call ends, or release it; an "
        "expired hold releases itself. Send an `Idempotency-Key` to retry safely, as for `POST /usage`."
    ),
    response_model=HoldResponse,
    responses=DEBIT_ANSWERS,
)
def place_hold(
    body: HoldRequest,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    idempotency_key: str | None = _idempotency_key("hold"),
) -> HoldResponse:
    return _served_by_the_lean_path()


_CLOSE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: INVALID_KEY,
    404: _error("No such hold for this account (code hold_not_found)."),
    409: _error(
        "The hold is closed: captured, released (code hold_closed) or expired (code hold_expired). The same "
        "capture or release sent again is answered as the first was, with `Idempotent-Replayed: true`."
    ),
    503: UNAVAILABLE,
}


@router.post(
    "/holds/{hold_id}/capture",
    summary="Capture a hold",
    description=(
        "Debits `amount_cents`, at most the held amount, as one usage entry (it counts as today's usage and as "
        "a request) and gives back the rest of the hold. It is not refused by the balance or the budgets: the "
        "hold reserved it. The same capture sent again is answered as the first was and debits once."
    ),
    response_model=ClosedHoldResponse,
    responses={
        **_CLOSE_ERRORS,
        413: _error(f"The body is larger than {MAX_BODY_BYTES} bytes (code payload_too_large)."),
        415: NOT_JSON,
        422: _error("Malformed body, or more than the held amount (code validation_error)."),
    },
)
def capture_hold(
    body: CaptureRequest,
    hold_id: str = _HOLD_ID,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> ClosedHoldResponse:
    return _served_by_the_lean_path()


@router.post(
    "/holds/{hold_id}/release",
    summary="Release a hold",
    description="Gives back everything the hold reserved; nothing is debited. Sent again, it answers the same.",
    response_model=ClosedHoldResponse,
    responses=_CLOSE_ERRORS,
)
def release_hold(
    hold_id: str = _HOLD_ID, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> ClosedHoldResponse:
    return _served_by_the_lean_path()


def metering_engine() -> Engine:
    """The lean path's database; a key of the API's dependency_overrides, so tests can point it at theirs."""
    return get_engine()


def metering_clock() -> datetime:
    """The lean path's clock, overridable like `metering_engine` (tests move it across a UTC midnight)."""
    return utcnow()


# --- The lean path ----------------------------------------------------------------------------


class _Usage(msgspec.Struct, forbid_unknown_fields=True):
    amount_cents: int | float
    description: str = ""


class _Event(_Usage, forbid_unknown_fields=True):
    idempotency_key: str | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[_Event], msgspec.Meta(min_length=1)]


class _Hold(msgspec.Struct, forbid_unknown_fields=True):
    amount_cents: int | float
    ttl_seconds: int | float = holds.DEFAULT_TTL_SECONDS
    description: str = ""


class _Capture(msgspec.Struct, forbid_unknown_fields=True):
    amount_cents: int | float


_USAGE = msgspec.json.Decoder(_Usage)
_HOLD = msgspec.json.Decoder(_Hold)
_CAPTURE = msgspec.json.Decoder(_Capture)
_BATCH = msgspec.json.Decoder(_Batch)
_encode = msgspec.json.Encoder().encode


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"

    def __init__(self):
        super().__init__("Send the body as JSON, with Content-Type: application/json.")


class TooManyEvents(BodyTooLarge):
    def __init__(self):
        DomainError.__init__(self, f"A batch may hold at most {MAX_BATCH_EVENTS} events.")


class _ClientGone(Exception):
    pass


@dataclass(frozen=True)
class _Call:
    """What a lean handler needs of a request: its headers (ASGI's lowercase names), a way to
    read its body, the database and the time."""

    headers: dict[bytes, bytes]
    receive: Receive
    engine: Engine
    now: datetime
    hold_id: str = ""

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    def api_key(self) -> str | None:
        scheme, _, token = (self.header(b"authorization") or "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    async def json_body(self, max_bytes: int) -> bytes:
        """The body, refused (415) when not sent as JSON and (413) past `max_bytes`."""
        media_type = self.headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            raise UnsupportedMediaType()
        declared = self.headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > max_bytes:
            raise BodyTooLarge(max_bytes)
        body, more = b"", True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            body += message.get("body", b"")
            if len(body) > max_bytes:
                raise BodyTooLarge(max_bytes)
            more = message.get("more_body", False)
        return body


def _decoded(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(str(exc)) from None
    except msgspec.DecodeError:
        raise ValidationFailed("The body is not valid JSON.") from None


def _whole(value: int | float, name: str, most: int) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise ValidationFailed(f"{name}: must be a whole number.")
        value = int(value)
    if not 0 < value <= most:
        raise ValidationFailed(f"{name}: must be from 1 to {most}.")
    return value


def _usage_call(call: _Call, usage: _Usage | _Hold, idempotency_key: str | None, where: str = "") -> metering.UsageCall:
    """The same rules as UsageRequest's (the document's), on a decoded body."""
    amount = _whole(usage.amount_cents, f"{where}amount_cents", metering.MAX_AMOUNT_CENTS)
    if len(usage.description) > metering.DESCRIPTION_MAX_LENGTH:
        raise ValidationFailed(f"{where}description: at most {metering.DESCRIPTION_MAX_LENGTH} characters.")
    if not metering.plain_text(usage.description):
        raise ValidationFailed(f"{where}description: {metering.DESCRIPTION_CONTROL_CHARACTERS}")
    if idempotency_key is not None and not metering.valid_idempotency_key(idempotency_key):
        raise ValidationFailed(f"{where}{metering.IDEMPOTENCY_KEY_RULE}")
    return {
        "api_key": call.api_key(),
        "amount_cents": amount,
        "description": usage.description,
        "idempotency_key": idempotency_key,
        "now": call.now,
    }


async def _record_usage(call: _Call) -> Answer:
    usage = _decoded(_USAGE, await call.json_body(MAX_BODY_BYTES))
    (answer,) = await _debit(call.engine, [_usage_call(call, usage, call.header(b"idempotency-key"))])
    return answer


async def _record_usage_batch(call: _Call) -> Answer:
    batch = _decoded(_BATCH, await call.json_body(MAX_BATCH_BYTES))
    if len(batch.events) > MAX_BATCH_EVENTS:
        raise TooManyEvents()
    usages = [
        _usage_call(call, event, event.idempotency_key, f"events[{index}].") for index, event in enumerate(batch.events)
    ]
    answers = await _debit(call.engine, usages)
    if answers[0].status_code == 401:
        return answers[0]  # the request's key, refused for every event alike
    return Answer(200, {"results": [answer.body for answer in answers]})


async def _read_balance(call: _Call) -> Answer:
    api_key = call.api_key()

    def run() -> Answer:
        with transaction(call.engine) as session:
            return metering.balance(session, api_key=api_key, now=call.now)

    return await _in_thread(call.engine, run)


async def _place_hold(call: _Call) -> Answer:
    body = _decoded(_HOLD, await call.json_body(MAX_BODY_BYTES))
    usage = _usage_call(call, body, call.header(b"idempotency-key"))
    ttl_seconds = _whole(body.ttl_seconds, "ttl_seconds", holds.MAX_TTL_SECONDS)

    def run() -> Answer:
        with transaction(call.engine) as session:
            return holds.place(
                session,
                api_key=usage["api_key"],
                amount_cents=usage["amount_cents"],
                ttl_seconds=ttl_seconds,
                description=usage.get("description", ""),
                idempotency_key=usage.get("idempotency_key"),
                now=call.now,
            )

    return await _in_thread(call.engine, run)


async def _capture_hold(call: _Call) -> Answer:
    body = _decoded(_CAPTURE, await call.json_body(MAX_BODY_BYTES))
    amount = _whole(body.amount_cents, "amount_cents", metering.MAX_AMOUNT_CENTS)
    api_key = call.api_key()

    def run() -> Answer:
        with transaction(call.engine) as session:
            return holds.capture(session, api_key=api_key, hold_id=call.hold_id, amount_cents=amount, now=call.now)

    return await _in_thread(call.engine, run)


async def _release_hold(call: _Call) -> Answer:
    api_key = call.api_key()

    def run() -> Answer:
        with transaction(call.engine) as session:
            return holds.release(session, api_key=api_key, hold_id=call.hold_id, now=call.now)

    return await _in_thread(call.engine, run)


LEAN_ROUTES: dict[tuple[str, str], Callable[[_Call], Awaitable[Answer]]] = {
    ("POST", "/api/v1/usage"): _record_usage,
    ("POST", "/api/v1/usage/batch"): _record_usage_batch,
    ("GET", "/api/v1/balance"): _read_balance,
    ("POST", "/api/v1/holds"): _place_hold,
    ("POST", "/api/v1/holds/{hold_id}/capture"): _capture_hold,
    ("POST", "/api/v1/holds/{hold_id}/release"): _release_hold,
}
# A hold's own paths, by the segment that names the hold (an unknown one is answered 404).
_HOLD_PATH = re.compile(r"/api/v1/holds/([^/]+)/(capture|release)")


# The documenting route of each, which names the request in the log and the metrics.
_DOCUMENTED = {
    (method, route.path): route
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods or ()
}


def _lean_route(scope: Scope) -> tuple[str, str] | None:
    """The LEAN_ROUTES path template this request is for, and the hold id it names."""
    path = scope["path"]
    if (scope["method"], path) in LEAN_ROUTES:
        return path, ""
    if scope["method"] == "POST" and (match := _HOLD_PATH.fullmatch(path)):
        return f"/api/v1/holds/{{hold_id}}/{match.group(2)}", match.group(1)
    return None


def is_lean(scope: Scope) -> bool:
    return _lean_route(scope) is not None


async def serve(api: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request of LEAN_ROUTES, with its request id, log line and metrics, as `api` would."""
    route = _lean_route(scope)
    assert route is not None, "serve is called for lean paths only"
    scope["app"], scope["route"] = api, _DOCUMENTED[scope["method"], route[0]]
    scope["ledgerdesk.lean"] = route
    await _LOGGED(scope, receive, send)


def _override(api: FastAPI, dependency: Callable[[], T]) -> T:
    return api.dependency_overrides.get(dependency, dependency)()


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    api = scope["app"]
    template, hold_id = scope["ledgerdesk.lean"]
    call = _Call(
        dict(scope["headers"]), receive, _override(api, metering_engine), _override(api, metering_clock), hold_id
    )
    handler = LEAN_ROUTES[scope["method"], template]
    try:
        answer = await handler(call)
    except _ClientGone:
        return
    except DomainError as exc:
        answer = metering.error_answer(exc)
        if handler in (_record_usage, _record_usage_batch):
            metrics.record_metering(exc.code, 0)  # refused before any debit: the body, its size or type
    except unavailable.DATABASE_UNAVAILABLE as exc:
        unavailable.log_unavailable(scope["method"], scope["path"], exc)
        answer = Answer(503, unavailable.BODY, unavailable.HEADERS)
    except Exception:
        log.exception("%s %s failed", scope["method"], scope["path"])
        answer = Answer(500, {"error": {"code": "internal_error", "message": "The call failed; nothing was debited."}})
    body = _encode(answer.body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in answer.headers.items()]
    if answer.replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_LOGGED = RequestContextMiddleware(_answer)


async def _debit(engine: Engine, calls: list[metering.UsageCall]) -> list[Answer]:
    """A request's usage calls, in order, each answered as if alone and counted in the metrics by
    its outcome."""
    try:
        answers = await _group(engine).debit(calls)
    except Exception:
        for _ in calls:
            metrics.record_metering("error", 0)
        raise
    for call, answer in zip(calls, answers, strict=True):
        debited = answer.status_code == 200 and not answer.replayed
        outcome = "ok" if debited else "replayed" if answer.replayed else answer.body["error"]["code"]
        metrics.record_metering(outcome, call["amount_cents"] if debited else 0)
    return answers


MAX_GROUP = 256
# Groups in flight at once per process: PostgreSQL runs each on a connection of its own (a group
# locks its rows in key order, so groups never deadlock); SQLite has one writer anyway.
MAX_IN_FLIGHT = {"postgresql": 4}

_Unit = tuple[list[metering.UsageCall], asyncio.Future, contextvars.Context]


class _WriterBusy(metering.NeedsLedger):
    """SQLite's write lock was not had in time (another connection writes): nothing was written,
    and trying halves of the group would only wait again."""


class _GroupCommit:
    """The usage calls that arrive together in this process for one database are debited together
    (`metering.debit_fast_group`, one round trip and one commit for the group; on SQLite one
    BEGIN IMMEDIATE on the loop's connection), each group in arrival order, and each call is
    answered once its group has committed. A request's calls (a batch's events) are never split
    between groups. When a call of the group needs the ledger's full rules nothing of the group
    was written: the group is halved and each half tried again, in arrival order, so one refused
    request leaves the others on the fast path; a request that needs the ledger alone has its
    calls debited one by one, as a lone call is (`_alone`), each in its request's context (its
    log fields and the jobs it enqueues carry its request id). When SQLite's writer is busy, every
    call of the group waits its turn that way."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.pending: list[_Unit] = []
        self.runners: set[asyncio.Task] = set()  # kept referenced while they run
        self.in_flight = 0
        self.max_in_flight = MAX_IN_FLIGHT.get(engine.dialect.name, 1)

    async def debit(self, calls: list[metering.UsageCall]) -> list[Answer]:
        future: asyncio.Future[list[tuple[Answer, int | None]]] = asyncio.get_running_loop().create_future()
        self.pending.append((calls, future, contextvars.copy_context()))
        if self.in_flight < self.max_in_flight:
            self.in_flight += 1
            runner = asyncio.ensure_future(self._run())
            self.runners.add(runner)
            runner.add_done_callback(self.runners.discard)
        results = await future
        logs.bind(account_id=next((account_id for _, account_id in results if account_id is not None), None))
        return [answer for answer, _ in results]

    async def _run(self) -> None:
        try:
            await asyncio.sleep(0)  # the calls that are ready on the loop with this one join its group
            while self.pending:
                size, taken = 0, 0
                while taken < len(self.pending) and (taken == 0 or size + len(self.pending[taken][0]) <= MAX_GROUP):
                    size += len(self.pending[taken][0])
                    taken += 1
                group, self.pending = self.pending[:taken], self.pending[taken:]
                await self._debit_group(group)
        finally:
            # With no await since pending was found empty: a call queued after that starts a runner.
            self.in_flight -= 1

    async def _debit_group(self, group: list[_Unit]) -> None:
        try:
            results = await self._fast([call for calls, _, _ in group for call in calls])
        except _WriterBusy:
            for unit in group:
                await self._one_by_one(unit)
            return
        except metering.NeedsLedger:
            if len(group) == 1:
                await self._one_by_one(group[0])
                return
            half = len(group) // 2
            await self._debit_group(group[:half])
            await self._debit_group(group[half:])
            return
        except Exception as exc:
            for _, future, _ in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for calls, future, _ in group:
            if not future.done():
                future.set_result(results[start : start + len(calls)])
            start += len(calls)

    async def _one_by_one(self, unit: _Unit) -> None:
        calls, future, context = unit
        if future.done():
            return
        try:
            answers = [await asyncio.create_task(_alone(self.engine, call), context=context) for call in calls]
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result([(answer, None) for answer in answers])

    async def _fast(self, calls: list[metering.UsageCall]) -> list[tuple[Answer, int | None]]:
        if self.engine.dialect.name == "postgresql":
            pool = await _pool(self.engine)
            async with pool.acquire() as connection:
                return await metering.debit_fast_group(connection, calls)
        try:
            return metering.debit_fast_group_sqlite(_sqlite_loop_connection(self.engine).driver_connection, calls)
        except sqlite3.OperationalError:
            raise _WriterBusy() from None


# One group commit per event loop and database (asyncpg connections belong to their loop).
_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Engine, _GroupCommit]] = weakref.WeakKeyDictionary()


def _group(engine: Engine) -> _GroupCommit:
    groups = _groups.setdefault(asyncio.get_running_loop(), {})
    group = groups.get(engine)
    if group is None:
        group = groups[engine] = _GroupCommit(engine)
    return group


async def _alone(engine: Engine, call: metering.UsageCall) -> Answer:
    """One call as a group of its own, else through the ledger (`metering.record_usage`)."""
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
