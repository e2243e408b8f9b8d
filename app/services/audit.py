"""The audit log: every change made on the administration and billing pages, recorded in the
transaction of the change (so a refused or rolled-back change leaves no entry), with who made it
and when. Owners read it (audit.view) with filters by category, user and days of the account's
timezone, newest first in keyset pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.errors import ValidationFailed
from app.models import Account, AuditEvent, utcnow
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_datetime, zone

# The part of an action before the dot, and how the filter names it.
CATEGORIES = {
    "company": "Company information",
    "plan": "Plan and seats",
    "team": "Team",
    "role": "Roles",
    "api_key": "API keys",
    "payment_method": "Payment methods",
    "payment": "Payments",
    "billing": "Billing settings",
    "tax": "Tax settings",
    "profile": "Profiles",
    "operator": "Operator actions",
}
PAGE_SIZE = 25
# Who the entries Stripe's webhooks cause are by.
STRIPE = "Stripe"
# Who the entries of the console's own billing rules are by (the step down after a renewal went unpaid).
BILLING = "Ledgerdesk billing"


def record(session: Session, actor: Actor, action: str, summary: str, *, now: datetime | None = None) -> None:
    """Add one entry for the change the actor just made in their account."""
    session.add(
        AuditEvent(
            account_id=actor.account_id,
            created_at=now or utcnow(),
            actor_user_id=actor.user_id,
            actor_name=actor.full_name or actor.email,
            actor_email=actor.email,
            action=action,
            summary=summary[:500],
        )
    )


def record_from_stripe(session: Session, account_id: int, action: str, summary: str) -> None:
    """An entry for what Stripe reported about the account's money (a refund, a dispute): no
    user made it, so Stripe is named as its author."""
    record_without_user(session, account_id, STRIPE, action, summary)


def record_without_user(
    session: Session, account_id: int, author: str, action: str, summary: str, *, now: datetime | None = None
) -> None:
    """An entry for a change no user made, named after its author (STRIPE, BILLING)."""
    session.add(
        AuditEvent(
            account_id=account_id,
            created_at=now or utcnow(),
            actor_name=author,
            actor_email=author,
            action=action,
            summary=summary[:500],
        )
    )


# "$1,234.56": every amount the console moves is in US dollars.
_DOLLARS = re.compile(r"-?\$\d[\d,]*(?:\.\d{2})?")


def with_currency(summary: str) -> str:
    """The summary with each dollar amount's currency named ("$25.00 USD"), old entries too."""
    return _DOLLARS.sub(
        lambda amount: amount[0] if summary.startswith(" USD", amount.end()) else f"{amount[0]} USD", summary
    )


@dataclass(frozen=True)
class AuditRow:
    id: int
    when: str
    who: str
    category: str
    summary: str


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    # Pass as `before_id` for the next (older) page; None on the last page.
    next_before_id: int | None


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field=field) from None


def events(
    session: Session,
    actor: Actor,
    *,
    category: str = "",
    user_email: str = "",
    day_from: str = "",
    day_to: str = "",
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    require(actor, Permission.AUDIT_VIEW)
    if category and category not in CATEGORIES:
        raise ValidationFailed("Choose a category from the list.", field="category")
    start, end = _day(day_from, "day_from"), _day(day_to, "day_to")
    if start and end and end < start:
        raise ValidationFailed("The end date is before the start date.", field="day_to")
    timezone = session.get_one(Account, actor.account_id).timezone
    query = select(AuditEvent).where(AuditEvent.account_id == actor.account_id)
    if category:
        query = query.where(or_(col(AuditEvent.action) == category, col(AuditEvent.action).startswith(f"{category}.")))
    if user_email:
        query = query.where(AuditEvent.actor_email == user_email)
    if start:
        query = query.where(AuditEvent.created_at >= _midnight(start, timezone))
    if end:
        query = query.where(AuditEvent.created_at < _midnight(end + timedelta(days=1), timezone))
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    found = session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit + 1)).all()
    rows = [
        AuditRow(
            id=event.id or 0,
            when=format_datetime(event.created_at, timezone),
            who=f"{event.actor_name} ({event.actor_email})"
            if event.actor_name != event.actor_email
            else event.actor_email,
            category=CATEGORIES.get(event.action.split(".")[0], event.action),
            summary=with_currency(event.summary),
        )
        for event in found[:limit]
    ]
    return AuditPage(rows, rows[-1].id if len(found) > limit else None)


def people(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """(email, name) of everyone who appears in the account's log, for the user filter."""
    require(actor, Permission.AUDIT_VIEW)
    found = session.exec(
        select(AuditEvent.actor_email, AuditEvent.actor_name)
        .where(AuditEvent.account_id == actor.account_id)
        .distinct()
        .order_by(AuditEvent.actor_email)
    ).all()
    return list(dict(found).items())


def _midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone(timezone)).astimezone(UTC)
