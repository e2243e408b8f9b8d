"""Outgoing email: every message is written to the outbox (and the log); a job sends it by SMTP
when SMTP_URL is set."""

from __future__ import annotations

import logging

from sqlmodel import Session

from app.config import get_settings
from app.jobs.queue import enqueue
from app.models import OutboxEmail

log = logging.getLogger("ledgerdesk.email")


def queue_email(
    session: Session, *, to: str, subject: str, body: str, account_id: int | None = None
) -> OutboxEmail:
    message = OutboxEmail(account_id=account_id, to_address=to, subject=subject, body_text=body)
    session.add(message)
    session.flush()
    if get_settings().smtp_url:
        enqueue(session, "deliver_email", {"email_id": message.id}, dedupe_key=f"email:{message.id}")
        log.info("email #%s to %s queued for SMTP: %s", message.id, to, subject)
    else:
        # Without SMTP the log is the mailbox: links in the body are what a developer needs.
        log.info("email #%s to %s: %s\n%s", message.id, to, subject, body)
    return message
