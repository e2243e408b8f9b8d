"""Outgoing webhooks, signed by the Standard Webhooks scheme with a secret per account.

A delivery is written in the caller's transaction together with its "deliver_webhook" job; the
job POSTs it (`outgoing` → `post` → `record_attempt`), logs every attempt and is retried with the
job queue's exponential backoff until the receiver answers 2xx or MAX_ATTEMPTS are spent."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from app import metrics
from app.config import get_settings
from app.errors import ValidationFailed
from app.jobs.queue import enqueue
from app.models import Account, BillingSettings, WebhookAttempt, WebhookDelivery, utcnow
from app.services import audit
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_datetime

# The job queue's backoff (2 s doubling, capped at an hour) spreads 16 attempts over about five
# hours, so a receiver that is down for a while still gets every notification.
MAX_ATTEMPTS = 16
TIMEOUT = httpx.Timeout(5.0)
RECENT_DELIVERIES = 20
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_secret(session: Session, account_id: int) -> str:
    """The account's signing secret, created on first use; two racing callers get the same one."""
    settings = billing_settings(session, account_id)
    if not settings.webhook_secret:
        session.exec(
            update(BillingSettings)
            .where(col(BillingSettings.account_id) == account_id, col(BillingSettings.webhook_secret) == "")
            .values(webhook_secret=new_secret())
            .execution_options(synchronize_session=False)
        )
        session.refresh(settings, ["webhook_secret"])
    return settings.webhook_secret


def validate_url(text: str) -> str:
    """An http(s) URL that does not point at this console, or "" for none."""
    url = (text or "").strip()
    if not url:
        return ""
    if len(url) > 500:
        raise ValidationFailed("The webhook URL can be at most 500 characters.", field="webhook_url")
    parts = urlsplit(url)
    try:
        port = _port(parts)
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValidationFailed("Enter a URL starting with http:// or https://.", field="webhook_url")
    if _aims_at_console(_host(parts.hostname), port):
        raise ValidationFailed("The webhook URL cannot point at this console.", field="webhook_url")
    refusal = private_target(url)
    if refusal:
        raise ValidationFailed(refusal, field="webhook_url")
    return url


class _Refused(Exception):
    pass


PRIVATE_TARGET = "The webhook URL cannot point at a loopback, private or link-local address."
UNRESOLVED = "The webhook URL's host name could not be resolved."


def private_target(url: str) -> str:
    """Why the URL may not be called, or "": unless ALLOW_PRIVATE_WEBHOOK_URLS (on outside
    production), every address its host resolves to must be a public one, so a customer's webhook
    cannot reach the operator's internal network. Checked at save and again before each POST,
    because a name can be pointed elsewhere after it was saved."""
    if get_settings().allow_private_webhook_urls:
        return ""
    try:
        _checked_addresses(url)
    except _Refused as refusal:
        return str(refusal)
    return ""


def _checked_addresses(url: str) -> list[str]:
    """The addresses the URL's host resolves to, resolved once, each one public unless private
    targets are allowed; `post` connects to these and resolves nothing again."""
    parts = urlsplit(url)
    try:
        addresses = _addresses(_host(parts.hostname or ""), _port(parts))
    except (OSError, ValueError, UnicodeError):
        raise _Refused(UNRESOLVED) from None
    if not addresses:
        raise _Refused(UNRESOLVED)
    if not get_settings().allow_private_webhook_urls and not all(_is_public(address) for address in addresses):
        raise _Refused(PRIVATE_TARGET)
    return addresses


def _addresses(host: str, port: int) -> list[str]:
    found = (str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    return list(dict.fromkeys(found))


# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits; the local-use prefix (RFC 8215)
# is never public.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")


def _unwrapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address an IPv6 address forwards to (IPv4-mapped, 6to4, NAT64, IPv4-compatible),
    or the address itself: the check must judge where the packets end up."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or int(address) >> 32 == 0:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if address in _NAT64_LOCAL_USE:
        return False
    address = _unwrapped(address)
    return address.is_global and not address.is_multicast


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _host(hostname: str) -> str:
    return hostname.lower().rstrip(".")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _aims_at_console(host: str, port: int) -> bool:
    settings = get_settings()
    console = urlsplit(settings.public_url)
    if console.hostname and (host, port) == (_host(console.hostname), _port(console)):
        return True
    return _is_loopback(host) and port == settings.app_port


def spend_event_id(account_id: int, kind: str, day: str) -> str:
    """The webhook-id of a spend notification: the same for the same account, kind and UTC day,
    so a notification job that runs twice creates its delivery once (the column is unique)."""
    digest = hashlib.sha256(f"spend:{account_id}:{kind}:{day}".encode()).hexdigest()
    return f"msg_{digest[:24]}"


def create_delivery(
    session: Session,
    account_id: int,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
) -> WebhookDelivery | None:
    """Queue an event for the account's webhook URL, in the caller's transaction. None when no
    URL is set, or when the event with this id already exists."""
    settings = billing_settings(session, account_id)
    if not settings.webhook_url:
        return None
    if (
        event_id is not None
        and session.exec(
            select(WebhookDelivery.id).where(
                WebhookDelivery.account_id == account_id, WebhookDelivery.public_id == event_id
            )
        ).first()
        is not None
    ):
        return None
    now = utcnow()
    delivery = WebhookDelivery(
        account_id=account_id,
        event_type=event_type,
        url=settings.webhook_url,
        payload=json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}),
        created_at=now,
    )
    if event_id is not None:
        delivery.public_id = event_id
    session.add(delivery)
    session.flush()
    ensure_secret(session, account_id)
    # A worker that dies mid-POST spends a job attempt without logging one: leave it room.
    enqueue(
        session,
        "deliver_webhook",
        {"account_id": account_id, "delivery_id": delivery.id},
        dedupe_key=f"webhook:{delivery.id}",
        max_attempts=MAX_ATTEMPTS + 2,
    )
    return delivery


def send_test_event(session: Session, actor: Actor) -> WebhookDelivery:
    require(actor, Permission.BILLING_MANAGE)
    account = session.get(Account, actor.account_id)
    assert account is not None, "the actor's account exists"
    delivery = create_delivery(
        session,
        actor.account_id,
        "test",
        {"account_id": account.public_id, "message": "A test event from Ledgerdesk Spend Management."},
    )
    if delivery is None:
        raise ValidationFailed("Save a webhook URL first.", field="webhook_url")
    audit.record(session, actor, "billing.webhook_test", "Sent a test event to the webhook")
    return delivery


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as the Spend Management page lists it."""

    id: str = ""
    event: str = ""
    created: str = ""
    status: str = ""
    attempts: str = ""
    last_status: str = ""


def delivery_rows(session: Session, actor: Actor, timezone: str) -> list[DeliveryRow]:
    """The latest deliveries as the page shows them, times in `timezone`."""
    return [
        DeliveryRow(
            id=row.public_id,
            event=row.event_type,
            created=format_datetime(row.created_at, timezone),
            status=row.status,
            attempts=str(row.attempts),
            last_status=str(row.last_status_code) if row.last_status_code is not None else "—",
        )
        for row in recent_deliveries(session, actor)
    ]


def recent_deliveries(session: Session, actor: Actor, limit: int = RECENT_DELIVERIES) -> list[WebhookDelivery]:
    """The account's latest deliveries, newest first."""
    require(actor, Permission.BILLING_VIEW)
    return list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.account_id == actor.account_id)
            .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Outgoing:
    """What one POST needs, read before the request so no transaction stays open during it."""

    account_id: int
    delivery_id: int
    url: str
    event_id: str
    payload: str
    secret: str


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def outgoing(session: Session, account_id: int, delivery_id: int) -> Outgoing | None:
    """The next POST of a pending delivery; None once it was delivered or given up."""
    delivery = session.get(WebhookDelivery, (account_id, delivery_id))
    if delivery is None or delivery.status != "pending":
        return None
    return Outgoing(
        account_id,
        delivery_id,
        delivery.url,
        delivery.public_id,
        delivery.payload,
        ensure_secret(session, delivery.account_id),
    )


def signed_headers(message: Outgoing, timestamp: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Ledgerdesk-Webhooks/1",
        "webhook-id": message.event_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(message.secret).sign(message.event_id, timestamp, message.payload),
    }


def post(message: Outgoing) -> AttemptResult:
    """One signed POST. Never raises: a refused connection or a timeout is an attempt without a
    status code. Redirects are not followed (a 3xx is a failed attempt). A target that has come to
    resolve to a private address is a failed attempt that sends nothing. The host is resolved
    once: the POST connects to the addresses that were checked (in order, the next one when a
    connection is refused), with the URL's Host header and TLS server name, so a name re-pointed
    between the check and the connection cannot reach anything else. No proxy from the
    environment is used, for the same reason."""
    try:
        addresses = _checked_addresses(message.url)
    except _Refused as refusal:
        return AttemptResult(None, str(refusal), 0)
    headers = signed_headers(message, utcnow())
    url = httpx.URL(message.url)
    headers["host"] = url.netloc.decode("ascii")
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    started = time.monotonic()
    error = ""
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        for address in addresses:
            try:
                response = client.post(
                    url.copy_with(host=address), content=message.payload, headers=headers, extensions=extensions
                )
            except httpx.ConnectError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            status = response.status_code
            return AttemptResult(status, "" if 200 <= status < 300 else f"HTTP {status}", _elapsed_ms(started))
    return AttemptResult(None, error[:500], _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def record_attempt(session: Session, account_id: int, delivery_id: int, result: AttemptResult) -> WebhookDelivery:
    """Log the attempt and move the delivery on: delivered on 2xx, failed after MAX_ATTEMPTS."""
    delivery = session.get(WebhookDelivery, (account_id, delivery_id), populate_existing=True)
    if delivery is None:
        raise LookupError(f"webhook delivery {delivery_id} does not exist")
    now = utcnow()
    session.add(
        WebhookAttempt(
            account_id=delivery.account_id,
            delivery_id=delivery_id,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
    )
    metrics.record_webhook_attempt(result.status_code)
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    if result.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    session.add(delivery)
    session.flush()
    return delivery
