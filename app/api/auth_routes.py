"""The two HTTP steps of signing in and out: only an HTTP response can set or clear the
HttpOnly session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from app.config import get_settings
from app.db import transaction
from app.services import auth, navigation

router = APIRouter(include_in_schema=False)


@router.get("/auth/session")
def exchange_handoff(request: Request, code: str = "", next: str = "/") -> RedirectResponse:
    with transaction() as session:
        token = auth.start_session(
            session,
            code,
            binding=request.cookies.get(auth.HANDOFF_COOKIE, ""),
            user_agent=request.headers.get("user-agent", ""),
            ip_address=request.client.host if request.client else "",
        )
        actor = auth.actor_for_session_token(session, token) if token is not None else None
    if token is None or actor is None:
        response = RedirectResponse("/sign-in?expired=1", status_code=303)
    else:
        # A page the user's role cannot open (left in the link by someone else) is not where they land.
        response = RedirectResponse(navigation.landing(actor, auth.safe_next(next)), status_code=303)
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
    response.delete_cookie(auth.HANDOFF_COOKIE, path="/auth/session")
    return response


def same_origin(request: Request) -> bool:
    """A request the console's own pages sent: the browser says so (Sec-Fetch-Site), or its Origin
    is the console's. A browser sends Origin with every POST, so none at all is refused too."""
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = request.headers.get("origin", "")
    own = {get_settings().public_url, f"{request.url.scheme}://{request.headers.get('host', '')}"}
    return origin in own


@router.post("/auth/sign-out")
def sign_out(request: Request) -> Response:
    """A POST from the console's own page: a GET, or a POST from another site (which a SameSite=Lax
    cookie does not stop from clearing the cookie), would let any page sign a user out."""
    if not same_origin(request):
        return PlainTextResponse("Cross-site sign-out refused.", status_code=403)
    with transaction() as session:
        auth.sign_out(session, request.cookies.get(auth.SESSION_COOKIE, ""))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
