"""The HTTP side of the console, mounted next to Reflex's backend on the same port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import (
    auth_routes,
    docs,
    files,
    health,
    invoices,
    metering,
    metrics,
    operator,
    operator_auth,
    stripe_webhook,
    unavailable,
)
from app.api.request_log import RequestContextMiddleware
from app.errors import DomainError


@asynccontextmanager
async def _lifespan(_api: FastAPI) -> AsyncIterator[None]:
    # Runs where this app is served on its own (tests); mounted in Reflex, pools live with the process.
    yield
    await metering.close_pools()


def _flat_routes(routes) -> Iterator:
    """Routes, with those of included routers in place (FastAPI keeps those as one entry)."""
    for route in routes:
        router = getattr(route, "original_router", None)
        yield from _flat_routes(router.routes) if router is not None else [route]


def _separate_operator_document(api: FastAPI) -> None:
    """The operator API has a document of its own, and the metering API's leaves it out: each
    audience gets only what it may call."""
    others = [r for r in api.routes if getattr(r, "original_router", None) is not operator.router]

    def metering_document() -> dict:
        if api.openapi_schema is None:
            api.openapi_schema = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=others
            )
        return api.openapi_schema

    operator_document = get_openapi(
        title="Ledgerdesk operator API",
        version="1",
        description="The operator's own API: open, read, credit, re-plan, suspend and reactivate customer accounts. "
        "Authenticate with an operator API key (made in the back office) as a Bearer token.",
        routes=operator.router.routes,
    )
    api.openapi = metering_document  # type: ignore[method-assign]

    @api.get(operator.OPENAPI_URL, include_in_schema=False)
    async def _operator_openapi() -> JSONResponse:
        return JSONResponse(operator_document)

    docs.add_docs(api, operator.DOCS_PATH, operator.OPENAPI_URL, "Ledgerdesk operator API")


class LedgerdeskAPI(FastAPI):
    """The console's HTTP API. Its first step serves the metering API's lean path
    (`metering.LEAN_ROUTES`), before FastAPI's middleware and routing; the rest is FastAPI's."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and metering.is_lean(scope):
            await metering.serve(self, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class MeteringFirst:
    """The backend's outermost layer but for the security headers (app/app.py): a metering call
    goes straight to the API's lean path, past Reflex's own middleware and routing."""

    def __init__(self, app: ASGIApp, api: LedgerdeskAPI):
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and metering.is_lean(scope):
            await metering.serve(self.api, scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_api() -> LedgerdeskAPI:
    api = LedgerdeskAPI(
        title="Ledgerdesk API",
        version="1",
        description="The metering API: authenticate with an account's API key as a Bearer token.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # add_docs serves it, without a CDN
        redoc_url=None,
        lifespan=_lifespan,
    )
    api.include_router(metering.router)
    api.include_router(auth_routes.router)
    api.include_router(operator_auth.router)
    api.include_router(health.router)
    api.include_router(metrics.router)
    api.include_router(stripe_webhook.router)
    api.include_router(files.router)
    api.include_router(invoices.router)
    api.include_router(operator.router)
    # Outermost: Reflex's pages are mounted inside this app, so every request gets its id.
    api.add_middleware(RequestContextMiddleware)
    docs.add_docs(api)
    _separate_operator_document(api)

    @api.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status_code)

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        unavailable.log_unavailable(request.method, request.url.path, exc)
        return JSONResponse(unavailable.BODY, status_code=503, headers=unavailable.HEADERS)

    for error in unavailable.DATABASE_UNAVAILABLE:
        api.add_exception_handler(error, _database_unavailable)

    @api.api_route(
        "/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False
    )
    async def _unknown_api_path(request: Request, rest: str) -> JSONResponse:
        # Without this an unknown /api path would fall through to Reflex's HTML 404; and as it
        # matches every path, it also answers a known path's other methods, with 405.
        allowed = sorted(
            {
                method
                for route in _flat_routes(api.routes)
                if route.path != "/api/{rest:path}"
                and getattr(route, "methods", None)
                and route.path_regex.match(request.url.path)
                for method in route.methods
            }
        )
        if allowed:
            return JSONResponse(
                {"error": {"code": "method_not_allowed", "message": f"Use {', '.join(allowed)} here."}},
                status_code=405,
                headers={"Allow": ", ".join(allowed)},
            )
        return JSONResponse({"error": {"code": "not_found", "message": "No such endpoint."}}, status_code=404)

    return api
