"""The Stripe webhook receiver. Nothing is stored unless the signature verifies; a verified
event is recorded and applied in one transaction, and a replay is acknowledged without effect.
An event for a payment of ours that we do not have yet is kept unapplied and applied by a job once
the payment is there (`stripe_events.defer`). A body over MAX_BODY_BYTES (Stripe's events are a few KB) is refused
with 413 before more of it is read."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from app.api.body import BodyTooLarge, limited_body
from app.db import get_engine, transaction
from app.payments.gateway import InvalidWebhook, verify_webhook
from app.services.stripe_events import UnknownPayment, defer, record_and_handle

router = APIRouter(include_in_schema=False)
log = logging.getLogger("ledgerdesk.stripe_webhook")
MAX_BODY_BYTES = 256 * 1024


def webhook_engine() -> Engine:
    """A dependency, so tests can point the receiver at their database."""
    return get_engine()


def _record(engine: Engine, event: dict) -> bool:
    """True when applied now, False when deferred until its payment is committed."""
    try:
        with transaction(engine) as session:
            record_and_handle(session, event)
        return True
    except UnknownPayment as exc:
        log.warning("%s: kept, a job applies it once the payment is there", exc)
    with transaction(engine) as session:
        defer(session, event)
    return False


@router.post("/api/webhooks/stripe")
async def stripe_webhook(request: Request, engine: Engine = Depends(webhook_engine)) -> JSONResponse:
    try:
        payload = await limited_body(request, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status_code)
    try:
        event = verify_webhook(payload, request.headers.get("stripe-signature", ""))
    except InvalidWebhook as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=400)
    # Database work is blocking; a failure answers 500 and Stripe delivers the event again.
    applied = await run_in_threadpool(_record, engine, event)
    return JSONResponse({"received": True} if applied else {"received": True, "deferred": True})
