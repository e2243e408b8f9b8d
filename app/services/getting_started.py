"""The Billing Overview's getting-started list for a new account: four steps, each ticked off by
the account's own data (nothing is stored per step), hidden once all are done or it is dismissed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from app.models import ApiKey, LedgerEntry, PaymentMethod, User, utcnow
from app.services import audit
from app.services.customers import account_of
from app.services.permissions import Actor, Permission, require

# The ledger sources of usage credits the account bought (card, crypto, auto recharge).
BOUGHT = ("purchase", "auto_recharge")


@dataclass(frozen=True)
class Step:
    key: str = ""
    title: str = ""
    href: str = ""
    done: bool = False


def _exists(session: Session, query: Any) -> bool:
    return session.exec(query.limit(1)).first() is not None


def steps(session: Session, account_id: int) -> list[Step]:
    """The list as the Overview shows it; empty once every step is done or it was dismissed.
    The caller has checked the actor may see the account's billing."""
    if account_of(session, account_id).getting_started_dismissed_at is not None:
        return []
    users = session.exec(select(func.count(col(User.id))).where(User.account_id == account_id)).one()
    listed = [
        Step(
            "payment_method",
            "Add a payment method",
            "/billing/payment-methods",
            _exists(session, select(PaymentMethod.id).where(PaymentMethod.account_id == account_id)),
        ),
        Step(
            "credits",
            "Add usage credits",
            "/billing/add-usage-credits",
            _exists(
                session,
                select(LedgerEntry.id).where(LedgerEntry.account_id == account_id, col(LedgerEntry.source).in_(BOUGHT)),
            ),
        ),
        Step(
            "api_key",
            "Create an API key",
            "/api-keys",
            _exists(session, select(ApiKey.id).where(ApiKey.account_id == account_id)),
        ),
        Step("teammate", "Invite a teammate", "/team", users > 1),
    ]
    return [] if all(step.done for step in listed) else listed


def dismiss(session: Session, actor: Actor, now: datetime | None = None) -> None:
    """Hide the list for everyone in the account."""
    require(actor, Permission.BILLING_MANAGE)
    account = account_of(session, actor.account_id)
    if account.getting_started_dismissed_at is None:
        account.getting_started_dismissed_at = now or utcnow()
        session.add(account)
        audit.record(session, actor, "billing.getting_started", "Hid the getting-started list", now=now)
