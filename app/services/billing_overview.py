"""What the Billing Overview page shows (seed 003), as text: the credit figures of
`app.services.overview`, the settings at a glance, the usage chart and the next payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session

from app.models import BillingSettings, utcnow
from app.services import getting_started, grants, overview, recharge, upcoming
from app.services.billing_details import address_lines
from app.services.customers import account_of
from app.services.money import format_usd
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_date


@dataclass(frozen=True)
class LiveFigures:
    """What can move while the Overview is open (the API's debits and holds, a recharge paused,
    grants drawn or expired): read again on every live update, so only these."""

    total_credits: str
    earlier_usage: str
    usage_this_period: str
    remaining_credits: str
    daily_limit: str
    available_to_use: str
    # "Expiring soon: $8.00 of promotional credits on …" within 30 days, else "".
    expiring_soon: str
    auto_recharge: str
    auto_recharge_reason: str
    # Today (UTC, as the chart labels it) and its usage in dollars: the chart's last bar.
    today: str
    used_today: float


@dataclass(frozen=True)
class OverviewView:
    live: LiveFigures
    overage_protection: str
    runs_out: str
    invoice_address: list[str]
    billing_email: str
    spend_management: str
    # {"day": "Mar 02", "usage": dollars} per UTC day of the last 30.
    chart: list[dict]
    next_payment: upcoming.NextPayment
    # A new account's first steps (empty once done or dismissed).
    getting_started: list[getting_started.Step]


def overview_view(session: Session, actor: Actor, now: datetime | None = None) -> OverviewView:
    require(actor, Permission.BILLING_VIEW)
    figures = overview.overview(session, actor.account_id, now)
    settings = overview.billing_settings(session, actor.account_id)
    runs_out = overview.runs_out_on(session, actor.account_id, now)
    po_number = [f"PO {settings.invoice_po_number}"] if settings.invoice_po_number else []
    return OverviewView(
        live=_live(session, actor, figures, settings, now),
        overage_protection=format_usd(figures.overage_protection),
        runs_out=f"At the last 14 days' rate, your credits run out on {format_date(runs_out)}."
        if runs_out
        else "No usage in the last 14 days: your credits are not running down.",
        invoice_address=address_lines(settings, _account_name(session, actor)) + po_number,
        billing_email=settings.billing_email or "Not set: invoices go to the account owners.",
        spend_management="Enabled" if settings.spend_management_enabled else "Disabled",
        chart=[
            {"day": f"{day:%b %d}", "usage": cents / 100}
            for day, cents in overview.daily_usage(session, actor.account_id, days=30, now=now)
        ],
        next_payment=upcoming.for_billing(session, actor, now),
        getting_started=getting_started.steps(session, actor.account_id),
    )


def live_figures(session: Session, actor: Actor, now: datetime | None = None) -> LiveFigures:
    require(actor, Permission.BILLING_VIEW)
    figures = overview.overview(session, actor.account_id, now)
    return _live(session, actor, figures, overview.billing_settings(session, actor.account_id), now)


def _live(
    session: Session, actor: Actor, figures: overview.Overview, settings: BillingSettings, now: datetime | None
) -> LiveFigures:
    return LiveFigures(
        total_credits=format_usd(figures.total_credits),
        earlier_usage=format_usd(figures.earlier_usage),
        usage_this_period=format_usd(figures.usage_this_period),
        remaining_credits=format_usd(figures.remaining_credits),
        daily_limit=_daily_limit(figures),
        available_to_use=format_usd(figures.available_to_use),
        expiring_soon=grants.expiring_soon(session, actor.account_id, _account_timezone(session, actor), now),
        auto_recharge="Enabled" if settings.auto_recharge_enabled else "Disabled",
        auto_recharge_reason=settings.auto_recharge_disabled_reason or recharge.paused_reason(settings, now),
        today=f"{(now or utcnow()).astimezone(UTC):%b %d}",
        used_today=figures.used_today / 100,
    )


def _daily_limit(figures: overview.Overview) -> str:
    used_today = format_usd(figures.used_today)
    if figures.daily_budget is None:
        return f"{used_today} used today (no daily limit)"
    return f"{used_today} of {format_usd(figures.daily_budget)} used today"


def _account_name(session: Session, actor: Actor) -> str:
    account = account_of(session, actor.account_id)
    return account.name


def _account_timezone(session: Session, actor: Actor) -> str:
    return account_of(session, actor.account_id).timezone
