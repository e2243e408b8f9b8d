"""The two HTTP steps of an operator's sign-in and sign-out (only an HTTP response can set or
clear the HttpOnly cookie), as `auth_routes` for customers, with the operator's own cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from app.api.auth_routes import same_origin
from app.config import get_settings
from app.db import transaction
from app.services.auth import safe_next
from app.services.operator import staff

router = APIRouter(include_in_schema=False)


@router.get(staff.HANDOFF_PATH)
def exchange_handoff(request: Request, code: str = "", next: str = "/operator") -> RedirectResponse:
    with transaction() as session:
        token = staff.start_session(session, code, binding=request.cookies.get(staff.HANDOFF_COOKIE, ""))
    if token is None:
        response = RedirectResponse("/operator/sign-in?expired=1", status_code=303)
    else:
        target = safe_next(next)
        response = RedirectResponse(target if target.startswith("/operator") else "/operator", status_code=303)
        settings = get_settings()
        response.set_cookie(
            staff.OPERATOR_COOKIE,
            token,
            max_age=settings.session_ttl_hours * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.public_url.startswith("https://"),
            path="/",
        )
    response.delete_cookie(staff.HANDOFF_COOKIE, path=staff.HANDOFF_PATH)
    return response


@router.post("/operator/auth/sign-out")
def sign_out(request: Request) -> Response:
    if not same_origin(request):
        return PlainTextResponse("Cross-site sign-out refused.", status_code=403)
    with transaction() as session:
        staff.sign_out(session, request.cookies.get(staff.OPERATOR_COOKIE, ""))
    response = RedirectResponse("/operator/sign-in", status_code=303)
    response.delete_cookie(staff.OPERATOR_COOKIE, path="/")
    return response
