"""Every HTTP request gets an id (the client's X-Request-Id when it is short and plain, else a new
one), echoed in the response; records logged while serving it carry it, and so do the jobs it
enqueues. Each API request is logged once with its route, status and duration."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.logs import log_context, request_id_from

log = logging.getLogger("ledgerdesk.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            metrics.websocket_opened()
            try:
                await self.app(scope, receive, send)
            finally:
                metrics.websocket_closed()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with log_context(request_id=request_id) as context:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                path: str = scope["path"]
                template = getattr(scope.get("route"), "path", None)
                # Pages, assets and uploads are Reflex's: one label, so their paths add no series.
                metrics.record_http(scope["method"], template or "(frontend)", status, time.perf_counter() - started)
                if path.startswith("/api/"):
                    route = template or path
                    log.info(
                        "%s %s %s",
                        scope["method"],
                        route,
                        status,
                        extra={
                            "method": scope["method"],
                            "route": route,
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                            "account_id": context.get("account_id"),
                        },
                    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
