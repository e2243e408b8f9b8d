"""The banner above every console page: what needs the user's action on their account's billing,
each with the page that fixes it. Shown only to users who may fix it (billing.manage)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from app.models import CreditBalance, utcnow
from app.services.invoices import past_due
from app.services.ledger import utc_day
from app.services.overview import billing_settings
from app.services.permissions import Actor, Permission
from app.services.recharge import paused


@dataclass(frozen=True)
class Notice:
    key: str
    message: str
    href: str
    action: str


def notices_for(session: Session, actor: Actor, now: datetime | None = None) -> list[Notice]:
    if not actor.can(Permission.BILLING_MANAGE):
        return []
    now = now or utcnow()
    found: list[Notice] = []
    if past_due(session, actor.account_id, now):
        found.append(
            Notice(
                "past_due",
                "A renewal is past due: its charge failed.",
                "/billing/invoices",
                "Pay the invoice",
            )
        )
    settings = billing_settings(session, actor.account_id)
    if settings.auto_recharge_disabled_reason and not settings.auto_recharge_enabled:
        found.append(
            Notice(
                "auto_recharge_off",
                "Auto recharge was turned off after failed payments.",
                "/billing/auto-recharge",
                "Check auto recharge",
            )
        )
    if paused(settings, now):
        found.append(
            Notice(
                "auto_recharge_paused",
                "Auto recharge is paused: this month's automatic top-ups reached your ceiling.",
                "/billing/auto-recharge",
                "Check auto recharge",
            )
        )
    balance = session.get(CreditBalance, actor.account_id)
    if balance is not None and balance.balance_cents < 0:
        found.append(
            Notice(
                "balance_below_zero",
                "Your balance is below zero: you are using the overage protection.",
                "/billing/add-usage-credits",
                "Add usage credits",
            )
        )
    if (
        balance is not None
        and settings.spend_management_enabled
        and balance.daily_budget_cents is not None
        and balance.usage_day == utc_day(now)
        and balance.used_today_cents >= balance.daily_budget_cents
    ):
        found.append(
            Notice(
                "daily_budget_reached",
                "Today's budget is reached: API calls are refused until midnight UTC.",
                "/billing/spend-management",
                "Change the budget",
            )
        )
    return found
