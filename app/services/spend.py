"""Spend Management (seed 003): a daily credit usage budget that caps today's (UTC) usage (a call
that would go past it is refused), a notification threshold (email and webhook), and the webhook URL.

The form's values live in BillingSettings; `save_settings` copies the ones in force onto the
metering row (CreditBalance) in the same transaction, which every debit reads. The ledger queues
job "spend_notification" when a line is reached; `notify` is its idempotent work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import DomainError, FormInvalid, ValidationFailed
from app.models import Account, BillingSettings, CreditBalance, OutboxEmail, utcnow
from app.services import audit, live, webhooks
from app.services.company import account_timezone
from app.services.email import billing_recipients, queue_email
from app.services.ledger import ensure_credit_balance, held_now, utc_day
from app.services.money import format_usd, parse_dollars, plain_dollars
from app.services.overview import billing_settings, usage_on_day
from app.services.permissions import Actor, Permission, require

EVENT_TYPES = {"threshold": "spend.threshold_reached", "budget": "spend.budget_reached"}


@dataclass(frozen=True)
class SpendSettings:
    enabled: bool
    daily_budget_cents: int | None
    daily_notify_threshold_cents: int | None
    webhook_url: str
    used_today_cents: int
    used_yesterday_cents: int
    # The budget the debits enforce today (None: no cap).
    budget_in_force_cents: int | None = None
    # Reserved by open holds: their captures will count as usage, so they come off what is left.
    held_cents: int = 0


def spend_settings(session: Session, actor: Actor, now: datetime | None = None) -> SpendSettings:
    """The form's values and the credits consumed today and yesterday (UTC days): today from the
    metering row, yesterday from the ledger."""
    require(actor, Permission.BILLING_VIEW)
    today = utc_day(now or utcnow())
    settings = billing_settings(session, actor.account_id)
    row = session.get(CreditBalance, actor.account_id)
    return SpendSettings(
        enabled=settings.spend_management_enabled,
        daily_budget_cents=settings.daily_budget_cents,
        daily_notify_threshold_cents=settings.daily_notify_threshold_cents,
        webhook_url=settings.webhook_url,
        used_today_cents=row.used_today_cents if row is not None and row.usage_day == today else 0,
        used_yesterday_cents=usage_on_day(session, actor.account_id, today - timedelta(days=1)),
        budget_in_force_cents=row.daily_budget_cents if row is not None else None,
        held_cents=held_now(session, actor.account_id, now or utcnow()) if row is not None and row.held_cents else 0,
    )


@dataclass(frozen=True)
class SpendView:
    """What the Spend Management page shows: the form's values as text, the credits consumed, the
    webhook's signing secret ("" for a role that cannot manage billing) and its latest deliveries."""

    enabled: bool
    daily_budget: str
    notify_threshold: str
    webhook_url: str
    used_today: str
    used_yesterday: str
    # How today's budget stands ("" without one): what is left, or that calls are refused until midnight UTC.
    budget_status: str
    budget_reached: bool
    can_manage: bool
    secret: str
    deliveries: list[webhooks.DeliveryRow]


def spend_view(session: Session, actor: Actor, now: datetime | None = None) -> SpendView:
    now = now or utcnow()
    settings = spend_settings(session, actor, now)
    can_manage = actor.can(Permission.BILLING_MANAGE)
    status, reached = _budget_status(settings, now)
    return SpendView(
        enabled=settings.enabled,
        daily_budget=_dollars(settings.daily_budget_cents),
        notify_threshold=_dollars(settings.daily_notify_threshold_cents),
        webhook_url=settings.webhook_url,
        used_today=format_usd(settings.used_today_cents),
        used_yesterday=format_usd(settings.used_yesterday_cents),
        budget_status=status,
        budget_reached=reached,
        can_manage=can_manage,
        secret=webhook_secret(session, actor) if can_manage else "",
        deliveries=webhooks.delivery_rows(session, actor, account_timezone(session, actor)),
    )


def _budget_status(settings: SpendSettings, now: datetime) -> tuple[str, bool]:
    budget = settings.budget_in_force_cents
    if budget is None:
        return "", False
    left = budget - settings.used_today_cents - settings.held_cents
    if left > 0:
        held = f", {format_usd(settings.held_cents)} held for calls in progress" if settings.held_cents else ""
        return f"{format_usd(left)} of today's {format_usd(budget)} budget is left (UTC day{held}).", False
    midnight = datetime.combine(utc_day(now) + timedelta(days=1), time(), tzinfo=UTC)
    minutes = max(int((midnight - now).total_seconds()) // 60, 1)
    return (
        f"Today's budget of {format_usd(budget)} is reached: API calls are refused until midnight UTC "
        f"(in {minutes // 60} h {minutes % 60} min).",
        True,
    )


def _dollars(cents: int | None) -> str:
    return plain_dollars(cents) if cents is not None else ""


def webhook_secret(session: Session, actor: Actor) -> str:
    """The account's webhook signing secret, created on first use. Only for billing managers."""
    require(actor, Permission.BILLING_MANAGE)
    return webhooks.ensure_secret(session, actor.account_id)


def _amount(text: str, field: str, label: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if "-" in text:
        raise ValidationFailed(f"The {label} must be a positive amount.", field=field)
    cents = parse_dollars(text, field)
    if cents <= 0:
        raise ValidationFailed(f"The {label} must be a positive amount.", field=field)
    return cents


def save_settings(
    session: Session,
    actor: Actor,
    *,
    enabled: bool,
    daily_budget: str,
    notify_threshold: str,
    webhook_url: str,
) -> BillingSettings:
    """Validate and store the form, and put its limits in force (none while spend management is
    off). A budget below today's usage blocks usage at once. Raises FormInvalid with every
    field error; nothing is stored then."""
    require(actor, Permission.BILLING_MANAGE)
    live.mark(session, actor.account_id)
    errors: dict[str, str] = {}

    def check(field: str, parse):
        try:
            return parse()
        except DomainError as exc:
            errors[field] = exc.message
            return None

    budget = check("daily_budget", lambda: _amount(daily_budget, "daily_budget", "budget"))
    threshold = check(
        "notify_threshold", lambda: _amount(notify_threshold, "notify_threshold", "notification threshold")
    )
    url = check("webhook_url", lambda: webhooks.validate_url(webhook_url))
    if budget is not None and threshold is not None and threshold > budget:
        errors.setdefault("notify_threshold", "The notification threshold cannot be above the daily budget.")
    if errors:
        raise FormInvalid(errors)

    settings = billing_settings(session, actor.account_id)
    settings.spend_management_enabled = enabled
    settings.daily_budget_cents = budget
    settings.daily_notify_threshold_cents = threshold
    settings.webhook_url = url
    settings.updated_at = utcnow()
    session.add(settings)
    if settings.webhook_url:
        webhooks.ensure_secret(session, actor.account_id)
    put_in_force(session, settings)
    audit.record(
        session,
        actor,
        "billing.spend",
        f"Saved spend management ({'on' if enabled else 'off'}): daily budget {daily_budget.strip() or 'none'}, "
        f"notification at {notify_threshold.strip() or 'none'}, webhook {url or 'none'}",
    )
    return settings


def put_in_force(session: Session, settings: BillingSettings) -> None:
    """Copy the limits in force onto the metering row; only these two columns, so a concurrent
    debit's balance and usage are untouched."""
    ensure_credit_balance(session, settings.account_id)
    on = settings.spend_management_enabled
    session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == settings.account_id)
        .values(
            daily_budget_cents=settings.daily_budget_cents if on else None,
            daily_notify_threshold_cents=settings.daily_notify_threshold_cents if on else None,
            updated_at=utcnow(),
        )
    )
    session.flush()


def notify(session: Session, *, account_id: int, kind: str, day: str, used_cents: int, line_cents: int) -> None:
    """A spend line was reached on `day` (UTC): email the billing contacts when it is the
    notification threshold, and POST both kinds to the webhook URL. Safe to run twice: the
    email is keyed by account, recipient and subject, the delivery by its event id."""
    account = session.get(Account, account_id)
    if account is None:
        return
    if kind == "threshold":
        subject = f"Daily credit usage passed {format_usd(line_cents)} on {day} (UTC)"
        body = _threshold_email(session, account, day, used_cents, line_cents)
        for to in billing_recipients(session, account_id):
            sent = session.exec(
                select(OutboxEmail.id).where(
                    OutboxEmail.account_id == account_id, OutboxEmail.to_address == to, OutboxEmail.subject == subject
                )
            ).first()
            if sent is None:
                queue_email(session, to=to, subject=subject, body=body, account_id=account_id)
    webhooks.create_delivery(
        session,
        account_id,
        EVENT_TYPES[kind],
        {"account_id": account.public_id, "day": day, "used_cents": used_cents, f"{kind}_cents": line_cents},
        event_id=webhooks.spend_event_id(account_id, kind, day),
    )


def _threshold_email(session: Session, account: Account, day: str, used_cents: int, line_cents: int) -> str:
    budget = session.exec(
        select(CreditBalance.daily_budget_cents).where(CreditBalance.account_id == account.id)
    ).first()
    budget_line = (
        f"Your daily budget is {format_usd(budget)}: API calls that would take today's usage past it are refused "
        "until midnight UTC.\n\n"
        if budget is not None
        else ""
    )
    return (
        f"Hello,\n\n"
        f"Credit usage of {account.name} ({account.public_id}) reached {format_usd(used_cents)} on {day} (UTC), "
        f"passing your daily notification threshold of {format_usd(line_cents)}.\n\n"
        f"{budget_line}"
        f"Change these settings on the Spend Management page: {get_settings().public_url}/billing/spend-management\n"
    )
