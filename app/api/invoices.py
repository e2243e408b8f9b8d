"""Invoice PDFs, downloaded by the signed-in users of their account who may see billing."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine

from app.api.auth_routes import request_actor
from app.db import get_engine, transaction
from app.errors import NotAuthenticated
from app.services import invoices

router = APIRouter(include_in_schema=False)


def invoices_engine() -> Engine:
    """A dependency, so tests can point the endpoint at their database."""
    return get_engine()


@router.get("/api/invoices/{invoice_id}/pdf")
def invoice_pdf(invoice_id: str, request: Request, engine: Engine = Depends(invoices_engine)) -> Response:
    with transaction(engine) as session:
        actor = request_actor(session, request)
        if actor is None:
            raise NotAuthenticated("Please sign in.")
        filename, pdf = invoices.pdf_for(session, actor, invoice_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
