"""The operator API (/api/operator/v1): the operator's own systems open customer accounts, read
them, grant credits, set plans, suspend and reactivate, authenticated by an operator API key
("ldop_…", made in the back office). Errors have the metering API's shape; the document is its
own (/api/operator/v1/openapi.json, docs at /api/operator/v1/docs), not part of the metering
API's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException

from app.api.metering import _whole_number as whole_number
from app.config import get_settings
from app.db import get_engine, transaction
from app.errors import DomainError, ValidationFailed
from app.services import grants
from app.services.operator import accounts, keys
from app.services.operator.accounts import AccountRow
from app.services.operator.staff import Author
from app.services.plans import PLANS

PREFIX = "/api/operator/v1"
DOCS_PATH = f"{PREFIX}/docs"
OPENAPI_URL = f"{PREFIX}/openapi.json"
# Text fields: no control characters (PostgreSQL cannot store NUL), and a name or reason must have
# a letter or digit (ASCII, so the document's regex and the server's agree on what is blank).
PLAIN = r"^[^\x00-\x1f\x7f]*$"
WORDED = r"^[^\x00-\x1f\x7f]*[A-Za-z0-9][^\x00-\x1f\x7f]*$"
PlanCode = Annotated[str, Field(description="A plan code.", json_schema_extra={"enum": sorted(PLANS)})]
Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=accounts.REASON_MAX_LENGTH,
        pattern=WORDED,
        description="Why: recorded in the account's audit log.",
    ),
]
IdempotencyKey = Annotated[
    str,
    Header(
        min_length=1,
        max_length=150,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the grant happen once: the same key again returns the first grant and moves nothing.",
    ),
]


class ApiError(BaseModel):
    code: str = Field(description="Stable, machine-readable reason.", examples=["not_found"])
    message: str = Field(description="What happened, for people.")


class ErrorResponse(BaseModel):
    error: ApiError


def _error_json(error: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}}, status_code=error.status_code, headers=headers
    )


class _OperatorRoute(APIRoute):
    """Refusals and malformed requests get the API's error shape."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                parts = [
                    f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()
                ]
                return _error_json(ValidationFailed("; ".join(parts) or "The request is malformed."))
            except DomainError as exc:
                return _error_json(exc)
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                # FastAPI's answer to a body that is not JSON at all.
                return _error_json(ValidationFailed("The body is not valid JSON."))

        return route


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, malformed, unknown or deleted operator API key (code invalid_api_key)."),
    422: _error("Malformed request (code validation_error)."),
}
FOUND = {**ERRORS, 404: _error("No such account (code not_found).")}

router = APIRouter(prefix=PREFIX, tags=["Operator"], route_class=_OperatorRoute)
bearer = HTTPBearer(
    scheme_name="OperatorApiKey",
    description="An operator API key (the back office's API keys), sent as `Authorization: Bearer ldop_…`.",
    auto_error=False,
)
AccountId = Annotated[str, Path(max_length=32, pattern=r"^[A-Za-z0-9_]+$", description="The account id.")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def operator_engine() -> Engine:
    """A dependency, so tests can point the API at their database."""
    return get_engine()


@contextmanager
def _as_key(credentials: HTTPAuthorizationCredentials | None, engine: Engine) -> Iterator[tuple[Author, Session]]:
    """The key's author and one transaction for the call's work."""
    with transaction(engine) as session:
        yield keys.authenticate(session, credentials.credentials if credentials else None), session


class Account(BaseModel):
    id: str = Field(description="The account id.", examples=["acct_7Q2M4K8ZV1"])
    name: str
    plan: str = Field(description="The plan's code.")
    suspended: bool
    status: str = Field(description="active, past due or suspended.")
    balance_cents: int = Field(description="Remaining credits; negative when using overage protection.")
    used_today_cents: int = Field(description="Usage debited today (UTC day).")
    last_api_call_at: datetime | None = Field(description="When one of its API keys was last used, if ever.")
    created_at: datetime


def _account(row: AccountRow) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        plan=row.plan_code,
        suspended=row.suspended,
        status=row.status,
        balance_cents=row.balance_cents,
        used_today_cents=row.used_today_cents,
        last_api_call_at=row.last_api_call_at,
        created_at=row.created_at,
    )


class AccountList(BaseModel):
    data: list[Account]
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last page.")


class NewAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=WORDED, description="The company's name.")
    owner_email: str = Field(
        min_length=3,
        max_length=320,
        pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$",
        description="Invited as the account's Owner.",
    )
    owner_name: str = Field(default="", max_length=200, pattern=PLAIN)
    plan: PlanCode = "basic"


class NewAccount(BaseModel):
    account: Account
    invitation_url: str = Field(description="The Owner's invitation link (also emailed), valid 7 days.")


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[StrictInt, BeforeValidator(whole_number)] = Field(
        ge=-accounts.MAX_GRANT_CENTS,
        le=accounts.MAX_GRANT_CENTS,
        json_schema_extra={"not": {"const": 0}},
        description="Credits to give (positive) or take back (negative, at most down to minus the overage line); "
        "not zero.",
    )
    reason: Reason
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="Given credits only: when what is left of them expires (in the future, with its offset; "
        "422 otherwise, and for a take-back); null or absent: never.",
    )
    priority: Annotated[StrictInt, Field(ge=0, le=grants.PRIORITY_MAX), BeforeValidator(whole_number)] | None = Field(
        default=None,
        description="Given credits only (422 for a take-back): grants expiring at the same moment are used "
        "highest priority first (every grant before purchased credits). Absent: 0.",
    )


class Grant(BaseModel):
    entry_id: str = Field(description="The ledger entry of the grant (the first one's, for a replay).")
    amount_cents: int
    balance_cents: int = Field(description="The account's balance now.")
    expires_at: datetime | None = Field(description="When what is left of given credits expires; null: never.")
    priority: int | None = Field(description="The grant's priority; null for credits taken back.")


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanCode
    custom_pricing: StrictBool = Field(default=False, description="Bill the account by invoice (custom pricing).")
    reason: Reason


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


@router.post("/accounts", status_code=201, responses={**ERRORS, 409: _error("The owner's email is taken.")})
def open_account(
    body: NewAccountRequest, credentials: Credentials, engine: Annotated[Engine, Depends(operator_engine)]
) -> NewAccount:
    """A new account whose Owner is invited (emailed the link, which is also returned)."""
    with _as_key(credentials, engine) as (by, session):
        opened = accounts.open_account(
            session,
            by,
            name=body.name,
            owner_email=body.owner_email,
            owner_name=body.owner_name,
            plan_code=body.plan,
            base_url=get_settings().public_url,
        )
        row = accounts.account_row(session, opened.account.public_id)
        return NewAccount(account=_account(row), invitation_url=opened.invitation_link)


@router.get("/accounts", responses=ERRORS)
def list_accounts(
    credentials: Credentials,
    engine: Annotated[Engine, Depends(operator_engine)],
    search: Annotated[
        str, Query(max_length=320, pattern=PLAIN, description="Name, domain, a user's email, or an account id.")
    ] = "",
    plan: Annotated[str, Query(description="Only this plan.", json_schema_extra={"enum": ["", *sorted(PLANS)]})] = "",
    suspended: bool = False,
    past_due: bool = False,
    below_zero: Annotated[bool, Query(description="Only balances below zero.")] = False,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="`next_before` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = accounts.PAGE_SIZE,
) -> AccountList:
    """Accounts, newest first."""
    with _as_key(credentials, engine) as (_by, session):
        page = accounts.list_accounts(
            session,
            search=search,
            plan=plan,
            suspended=suspended,
            past_due=past_due,
            below_zero=below_zero,
            before_id=before,
            limit=limit,
        )
        return AccountList(data=[_account(row) for row in page.rows], next_before=page.next_before_id)


@router.get("/accounts/{account_id}", responses=FOUND)
def get_account(
    account_id: AccountId,
    credentials: Credentials,
    engine: Annotated[Engine, Depends(operator_engine)],
) -> Account:
    with _as_key(credentials, engine) as (_by, session):
        return _account(accounts.account_row(session, account_id))


@router.post(
    "/accounts/{account_id}/credits",
    responses={
        **FOUND,
        402: _error("Taking this much back would go past the overage line (code insufficient_credits)."),
        409: _error("The Idempotency-Key was used for another amount (code conflict)."),
    },
)
def grant_credits(
    account_id: AccountId,
    body: GrantRequest,
    idempotency_key: IdempotencyKey,
    credentials: Credentials,
    engine: Annotated[Engine, Depends(operator_engine)],
) -> Grant:
    """Give or take back credits: one `adjustment` ledger entry per Idempotency-Key. Given credits are a
    credit grant, used before purchased credits (soonest expiry first, then highest priority); what is
    left at `expires_at` expires."""
    with _as_key(credentials, engine) as (by, session):
        entry = accounts.grant_credits(
            session,
            by,
            account_id,
            amount_cents=body.amount_cents,
            reason=body.reason,
            request_key=f"api:{idempotency_key}",
            expires_at=body.expires_at,
            priority=body.priority,
        )
        row = accounts.account_row(session, account_id)
        grant = grants.grants_of_entries(session, entry.account_id, [entry.id or 0]).get(entry.id or 0)
        return Grant(
            entry_id=entry.public_id,
            amount_cents=entry.amount_cents,
            balance_cents=row.balance_cents,
            expires_at=grant.expires_at if grant else None,
            priority=grant.priority if grant else None,
        )


@router.put("/accounts/{account_id}/plan", responses=FOUND)
def set_plan(
    account_id: AccountId,
    body: PlanRequest,
    credentials: Credentials,
    engine: Annotated[Engine, Depends(operator_engine)],
) -> Account:
    """Move the account to a plan; nothing is charged or credited (the next renewal bills it)."""
    with _as_key(credentials, engine) as (by, session):
        accounts.set_plan(
            session, by, account_id, plan_code=body.plan, custom_pricing=body.custom_pricing, reason=body.reason
        )
        return _account(accounts.account_row(session, account_id))


def _suspension(suspended: bool) -> Callable:
    def change(
        account_id: AccountId,
        body: ReasonRequest,
        credentials: Credentials,
        engine: Annotated[Engine, Depends(operator_engine)],
    ) -> Account:
        with _as_key(credentials, engine) as (by, session):
            accounts.set_suspended(session, by, account_id, suspended=suspended, reason=body.reason)
            return _account(accounts.account_row(session, account_id))

    return change


router.add_api_route(
    "/accounts/{account_id}/suspend",
    _suspension(True),
    methods=["POST"],
    responses=FOUND,
    name="suspend_account",
    summary="Suspend account",
    description="Its metering API calls answer 403 account_suspended and its console is read-only.",
)
router.add_api_route(
    "/accounts/{account_id}/reactivate",
    _suspension(False),
    methods=["POST"],
    responses=FOUND,
    name="reactivate_account",
    summary="Reactivate account",
)
