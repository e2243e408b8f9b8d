"""Uploaded files, served to the signed-in users of their account only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from sqlalchemy.engine import Engine

from app.api.auth_routes import request_actor
from app.db import get_engine, transaction
from app.errors import NotAuthenticated
from app.services import company, profile

router = APIRouter(include_in_schema=False)

# An SVG opened on its own is a document: sandboxed, it can neither run script nor load anything.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    # The URL carries the file's version, so a new logo is a new URL.
    "Cache-Control": "private, max-age=86400",
}


def files_engine() -> Engine:
    """A dependency, so tests can point the endpoint at their database."""
    return get_engine()


def _serve(request: Request, engine: Engine, find) -> FileResponse:
    """The file `find(session, actor)` names, for the signed-in user of the session cookie."""
    with transaction(engine) as session:
        actor = request_actor(session, request)
        if actor is None:
            raise NotAuthenticated("Please sign in.")
        path, media_type = find(session, actor)
    return FileResponse(path, media_type=media_type, headers=_HEADERS)


@router.get("/api/account/logo")
def account_logo(request: Request, engine: Engine = Depends(files_engine)) -> FileResponse:
    return _serve(request, engine, company.logo_file)


@router.get("/api/profile/picture")
def profile_picture(request: Request, engine: Engine = Depends(files_engine)) -> FileResponse:
    """The signed-in user's own picture (the header and the profile page show only one's own)."""
    return _serve(request, engine, profile.picture_file)
