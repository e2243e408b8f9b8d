"""The two HTTP steps of signing in and out: only an HTTP response can set or clear the
HttpOnly session cookie. Customers' and the operator's staff's (`operator_auth`) go through the
same two functions, each with its own cookies (`app.services.credentials`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session

from app.config import get_settings
from app.db import read_only, transaction
from app.services import auth, navigation
from app.services.credentials import Credentials
from app.services.operator import staff
from app.services.permissions import Actor

router = APIRouter(include_in_schema=False)


def session_response(credentials: Credentials, token: str | None, *, target: str, expired: str) -> RedirectResponse:
    """Where a traded sign-in code leads: `target` with the session cookie set, or back to sign
    in (`expired`) when the code was not valid; the handoff cookie is gone either way."""
    if token is None:
        response = RedirectResponse(expired, status_code=303)
    else:
        response = RedirectResponse(target, status_code=303)
        settings = get_settings()
        response.set_cookie(
            credentials.cookie,
            token,
            max_age=settings.session_ttl_hours * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.public_url.startswith("https://"),
            path="/",
        )
    response.delete_cookie(credentials.handoff_cookie, path=credentials.handoff_path)
    return response


def sign_out_response(
    request: Request, credentials: Credentials, end: Callable[[Session, str], str | None], *, then: str
) -> Response:
    """A POST from the console's own page: a GET, or a POST from another site (which a SameSite=Lax
    cookie does not stop from clearing the cookie), would let any page sign a user out. `end`
    ends the cookie's session and may name where to go instead of `then`."""
    if not same_origin(request):
        return PlainTextResponse("Cross-site sign-out refused.", status_code=403)
    with transaction() as session:
        elsewhere = end(session, request.cookies.get(credentials.cookie, ""))
    response = RedirectResponse(elsewhere or then, status_code=303)
    response.delete_cookie(credentials.cookie, path="/")
    return response


def request_actor(session: Session, request: Request) -> Actor | None:
    """Who reads an endpoint that the console's pages load (a logo, an invoice's PDF): an
    operator's "View as" first (its session read-only from here on), else the customer's session."""
    viewing = request.cookies.get(staff.VIEW_AS_COOKIE, "")
    viewer = staff.viewer_for_token(session, viewing) if viewing else None
    if viewer is not None:
        session.flush()  # the session's last-seen time, before the rest is read-only
        read_only(session, staff.ViewingReadOnly())
        return viewer
    return auth.actor_for_session_token(session, request.cookies.get(auth.SESSION_COOKIE, ""))


@router.get("/auth/session")
def exchange_handoff(request: Request, code: str = "", next: str = "/") -> RedirectResponse:
    with transaction() as session:
        token = auth.start_session(
            session,
            code,
            binding=request.cookies.get(auth.HANDOFF_COOKIE, ""),
            user_agent=request.headers.get("user-agent", ""),
            ip_address=request.client.host if request.client else "",
            previous=request.cookies.get(auth.SESSION_COOKIE, ""),
        )
        actor = auth.actor_for_session_token(session, token) if token is not None else None
    # A page the user's role cannot open (left in the link by someone else) is not where they land.
    target = navigation.landing(actor, auth.safe_next(next)) if actor is not None else ""
    return session_response(
        auth.CUSTOMERS, token if actor is not None else None, target=target, expired="/sign-in?expired=1"
    )


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
    return sign_out_response(request, auth.CUSTOMERS, auth.sign_out, then="/sign-in")
