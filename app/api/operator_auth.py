"""The two HTTP steps of an operator's sign-in and sign-out, through the same functions as
customers' (`auth_routes`), with the operator's own cookies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.api.auth_routes import session_response, sign_out_response
from app.db import transaction
from app.services.auth import safe_next
from app.services.operator import accounts, staff

router = APIRouter(include_in_schema=False)


@router.get(staff.HANDOFF_PATH)
def exchange_handoff(request: Request, code: str = "", next: str = "/operator") -> RedirectResponse:
    binding = request.cookies.get(staff.HANDOFF_COOKIE, "")
    with transaction() as session:
        token = staff.start_session(session, code, binding=binding)
        viewing = staff.start_viewing(session, code, binding=binding) if token is None else None
    if viewing is not None:
        # "View as": the customer's console, read-only, under the view-as cookie.
        return session_response(staff.VIEWERS, viewing[0], target=safe_next(next), expired="/operator")
    target = safe_next(next)
    return session_response(
        staff.STAFF,
        token,
        target=target if target.startswith("/operator") else "/operator",
        expired="/operator/sign-in?expired=1",
    )


@router.post("/operator/auth/sign-out")
def sign_out(request: Request) -> Response:
    return sign_out_response(request, staff.STAFF, staff.sign_out, then="/operator/sign-in")


@router.post("/operator/auth/view-as/exit")
def stop_viewing(request: Request) -> Response:
    """End "View as" (recorded in the account's audit log) and go back to the account in the back office."""

    def end(session: Session, token: str) -> str | None:
        viewed = accounts.stop_viewing(session, token)
        return f"/operator/account?id={viewed}" if viewed else None

    return sign_out_response(request, staff.VIEWERS, end, then="/operator")
