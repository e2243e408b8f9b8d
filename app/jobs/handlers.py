"""Job handlers. Each is idempotent: a job may run again after a crash."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlparse

from sqlmodel import Session

from app.config import get_settings
from app.jobs import (  # noqa: F401  register their job handlers
    grants,
    holds,
    invoices,
    notifications,
    payments,
    recharge,
    signups,
    usage,
)
from app.jobs.queue import job_handler
from app.models import OutboxEmail, utcnow


def _smtp_send(message: EmailMessage) -> None:
    url = urlparse(get_settings().smtp_url)
    port = url.port or (465 if url.scheme == "smtps" else 25)
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    with smtp_class(url.hostname or "localhost", port, timeout=15) as smtp:
        if url.scheme == "smtp+starttls":
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(message)


@job_handler("deliver_email")
def deliver_email(session: Session, payload: dict[str, Any]) -> None:
    email = session.get(OutboxEmail, payload["email_id"])
    if email is None or email.sent_at is not None:
        return
    message = EmailMessage()
    message["From"] = get_settings().mail_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message.set_content(email.body_text)
    if email.attachment_name and email.attachment is not None:
        maintype, _, subtype = email.attachment_type.partition("/")
        message.add_attachment(email.attachment, maintype=maintype, subtype=subtype, filename=email.attachment_name)
    # No transaction stays open during the SMTP conversation: on SQLite it would hold the write lock.
    session.commit()
    _smtp_send(message)
    email.sent_at = utcnow()
    session.add(email)
