"""Request bodies read with a cap: a body past it is refused (413) from its Content-Length, or as
soon as what arrived passes it, so no endpoint buffers more than its cap."""

from __future__ import annotations

from fastapi import Request

from app.errors import DomainError


class BodyTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"

    def __init__(self, max_bytes: int):
        super().__init__(f"The request body may be at most {max_bytes} bytes.")


async def limited_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(max_bytes)
    return bytes(body)
