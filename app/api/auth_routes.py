"""The two HTTP steps of signing in and out: only an HTTP response can set or clear the
HttpOnly session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.config import get_settings
from app.db import transaction
from app.services import auth

router = APIRouter(include_in_schema=False)


@router.get("/auth/session")
def exchange_handoff(request: Request, code: str = "", next: str = "/") -> RedirectResponse:
    with transaction() as session:
        token = auth.start_session(
            session,
            code,
            user_agent=request.headers.get("user-agent", ""),
            ip_address=request.client.host if request.client else "",
        )
    if token is None:
        return RedirectResponse("/sign-in?expired=1", status_code=303)
    response = RedirectResponse(auth.safe_next(next), status_code=303)
    settings = get_settings()
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
        path="/",
    )
    return response


@router.get("/auth/sign-out")
def sign_out(request: Request) -> RedirectResponse:
    with transaction() as session:
        auth.sign_out(session, request.cookies.get(auth.SESSION_COOKIE, ""))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
