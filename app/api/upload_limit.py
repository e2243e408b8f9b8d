"""A cap on Reflex's upload endpoint (`POST /_upload`, the Company logo and profile pictures),
applied before the body is buffered: Reflex parses the multipart body into memory and temporary
files before any handler sees it, so without this a client could send any amount. A declared
Content-Length past the cap is answered 413 without reading; a body that passes it while
streaming is answered 413 as soon as it does, and the endpoint sees the client as gone."""

from __future__ import annotations

import json

from reflex import constants
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services.company import LOGO_MAX_BYTES

# One image of at most LOGO_MAX_BYTES and the multipart framing around it.
MAX_UPLOAD_BYTES = LOGO_MAX_BYTES + 64 * 1024
UPLOAD_PATH = str(constants.Endpoint.UPLOAD)


async def _too_large(send: Send, max_bytes: int) -> None:
    body = json.dumps(
        {"error": {"code": "payload_too_large", "message": f"The upload may be at most {max_bytes} bytes."}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UploadLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_UPLOAD_BYTES, path: str = UPLOAD_PATH):
        self.app, self.max_bytes, self.path = app, max_bytes, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.path):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    await _too_large(send, self.max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The endpoint failing on the disconnect it was handed: answered already.
            if not refused:
                raise
