"""The HTTP side of the console, mounted next to Reflex's backend on the same port."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.api import auth_routes, health, stripe_webhook
from app.services.errors import DomainError


def create_api() -> FastAPI:
    api = FastAPI(
        title="Ledgerdesk API",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    api.include_router(auth_routes.router)
    api.include_router(health.router)
    api.include_router(stripe_webhook.router)

    @api.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status_code)

    @api.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def _unknown_api_path(rest: str) -> JSONResponse:
        # Without this an unknown /api path would fall through to Reflex's HTML 404.
        return JSONResponse({"error": {"code": "not_found", "message": "No such endpoint."}}, status_code=404)

    return api
