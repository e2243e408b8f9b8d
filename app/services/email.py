"""Outgoing email: every message is written to the outbox (and the log); a job sends it by SMTP
when SMTP_URL is set. A message may carry one attachment (an invoice PDF), stored with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.config import get_settings
from app.jobs.queue import enqueue
from app.models import OutboxEmail, Role, User
from app.services.overview import billing_settings

log = logging.getLogger("ledgerdesk.email")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


def queue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    account_id: int | None = None,
    attachment: Attachment | None = None,
) -> OutboxEmail:
    message = OutboxEmail(account_id=account_id, to_address=to, subject=subject, body_text=body)
    if attachment is not None:
        message.attachment_name = attachment.filename
        message.attachment_type = attachment.content_type
        message.attachment = attachment.data
    session.add(message)
    session.flush()
    settings = get_settings()
    if settings.smtp_url:
        enqueue(session, "deliver_email", {"email_id": message.id}, dedupe_key=f"email:{message.id}")
        log.info("email #%s to %s queued for SMTP: %s", message.id, to, subject)
    elif settings.production:
        # Bodies carry sign-in links: a production log never holds them.
        log.warning("email #%s to %s not sent, SMTP_URL is not set: %s", message.id, to, subject)
    else:
        # Without SMTP in development the log is the mailbox: links in the body are what a developer needs.
        log.info("email #%s to %s: %s\n%s", message.id, to, subject, body)
    return message


def email_billing_contacts(session: Session, account_id: int, subject: str, body: str) -> None:
    """Queue the same email to each of the account's billing contacts."""
    for to in billing_recipients(session, account_id):
        queue_email(session, to=to, subject=subject, body=body, account_id=account_id)


def billing_recipients(session: Session, account_id: int) -> list[str]:
    """The billing email, or the active owners' emails when none is set."""
    email = billing_settings(session, account_id).billing_email
    if email:
        return [email]
    return list(
        session.exec(
            select(User.email)
            .join(Role, col(Role.id) == User.role_id)
            .where(User.account_id == account_id, User.status == "active", Role.builtin == True, Role.key == "owner")  # noqa: E712
            .order_by(col(User.id))
        )
    )
