"""Job handlers for spend notifications and webhook deliveries. Both are idempotent."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.jobs.queue import job_handler
from app.services import spend, webhooks


class WebhookNotDelivered(Exception):
    """Makes the job queue retry the delivery with its backoff."""


@job_handler("spend_notification")
def spend_notification(session: Session, payload: dict[str, Any]) -> None:
    spend.notify(
        session,
        account_id=payload["account_id"],
        kind=payload["kind"],
        day=payload["day"],
        used_cents=payload["used_cents"],
        line_cents=payload["line_cents"],
    )


@job_handler("deliver_webhook")
def deliver_webhook(session: Session, payload: dict[str, Any]) -> None:
    message = webhooks.outgoing(session, payload["account_id"], payload["delivery_id"])
    if message is None:
        return
    # No transaction stays open during the POST (on SQLite it would hold the write lock).
    session.commit()
    delivery = webhooks.record_attempt(session, message.account_id, message.delivery_id, webhooks.post(message))
    if delivery.status == "pending":
        # Commit the attempt's log first: a failing job's transaction is rolled back.
        session.commit()
        answer = delivery.last_status_code or "no answer"
        raise WebhookNotDelivered(f"delivery {delivery.public_id}, attempt {delivery.attempts}: {answer}")
