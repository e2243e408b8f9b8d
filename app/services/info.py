"""The Info page (seed 002): what the account contains, the add-ons of its plan and every plan
limit with its usage. Everyone in the account may read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.models import Account, ApiKey, CreditBalance, LedgerEntry, Role, User, utcnow
from app.services.customers import account_of
from app.services.money import format_usd
from app.services.permissions import Actor, Permission, require
from app.services.plans import ADD_ONS, LIMITS, Limit, Plan, get_plan
from app.services.product_catalogue import product_count
from app.services.storage import stored_bytes
from app.services.team import seat_limit

# Credits bought with money: what the monthly credits limit counts.
BOUGHT_SOURCES = ("purchase", "auto_recharge")

# Add-on statuses, shown gray, green and yellow.
NOT_INCLUDED, INCLUDED, LIMIT_REACHED = "not_included", "included", "limit_reached"


@dataclass(frozen=True)
class LimitUsage:
    key: str
    label: str
    hint: str
    used: int
    limit: int | None
    used_text: str
    limit_text: str

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def allows(self, more: int) -> bool:
        """Whether `more` fits under the limit."""
        return self.limit is None or self.used + more <= self.limit


@dataclass(frozen=True)
class AddOnStatus:
    name: str
    description: str
    status: str


@dataclass(frozen=True)
class AccountInfo:
    plan_name: str
    active_users: int
    invited_users: int
    api_keys: int
    custom_roles: int
    limits: tuple[LimitUsage, ...]
    add_ons: tuple[AddOnStatus, ...]
    # Whether the reader may change the plan, i.e. sees the "upgrade" link.
    can_upgrade: bool

    @property
    def any_limit_reached(self) -> bool:
        return any(limit.reached for limit in self.limits)


def user_names(session: Session, actor: Actor, user_ids: set[int]) -> dict[int, str]:
    """Display names of users of the actor's account (e.g. who created an API key); users of
    other accounts are left out."""
    if not user_ids:
        return {}
    rows = session.exec(
        select(User.id, User.full_name, User.email).where(
            User.account_id == actor.account_id, col(User.id).in_(user_ids)
        )
    )
    return {user_id: full_name or email for user_id, full_name, email in rows if user_id is not None}


def format_bytes(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{size} B"


def _format(limit: Limit, value: int) -> str:
    if limit.unit == "cents":
        return format_usd(value)
    if limit.unit == "bytes":
        return format_bytes(value)
    return f"{value:,}"


def _seats(session: Session, account: Account, now: datetime) -> int:
    return session.exec(
        select(func.count(col(User.id))).where(
            User.account_id == account.id, col(User.status).in_(("active", "invited"))
        )
    ).one()


def _api_keys(session: Session, account: Account, now: datetime) -> int:
    return session.exec(
        select(func.count(col(ApiKey.id))).where(ApiKey.account_id == account.id, col(ApiKey.deleted_at).is_(None))
    ).one()


def _credits_added_this_month(session: Session, account: Account, now: datetime) -> int:
    month_start = datetime.combine(now.date().replace(day=1), time(), tzinfo=UTC)
    return session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account.id,
            col(LedgerEntry.source).in_(BOUGHT_SOURCES),
            LedgerEntry.created_at >= month_start,
        )
    ).one()


def _requests_today(session: Session, account: Account, now: datetime) -> int:
    """The metering row's count of today's calls, which the debit itself keeps and checks."""
    row = session.get(CreditBalance, account.id)
    return row.requests_today if row is not None and row.usage_day == now.date() else 0


def _storage(session: Session, account: Account, now: datetime) -> int:
    return stored_bytes(session, account)


def _products(session: Session, account: Account, now: datetime) -> int:
    return product_count(session, account.id or 0)


# How each limit's usage is measured, for the Info page and for every refusal alike: seats are
# active and invited users; API keys those not deleted; monthly credits the credits bought this
# calendar month (UTC: top-ups and auto recharges); daily requests the metered calls of today
# (UTC); storage the bytes of uploaded files (logo and profile pictures); products those signed up
# for, the core one included.
_USAGE: dict[str, Callable[[Session, Account, datetime], int]] = {
    "seats": _seats,
    "api_keys": _api_keys,
    "monthly_credits_cents": _credits_added_this_month,
    "daily_requests": _requests_today,
    "storage_bytes": _storage,
    "products": _products,
}
_LIMITS = {limit.key: limit for limit in LIMITS}


def account_usage(session: Session, account: Account, now: datetime) -> dict[str, int]:
    """Usage against each limit key (see _USAGE)."""
    now = now.astimezone(UTC)
    return {key: int(measure(session, account, now)) for key, measure in _USAGE.items()}


def limit_status(session: Session, account: Account, key: str, now: datetime | None = None) -> LimitUsage:
    """One plan limit and its usage as the Info page shows it: what a refusal at the limit checks."""
    used = int(_USAGE[key](session, account, (now or utcnow()).astimezone(UTC)))
    return _limit_usage(_LIMITS[key], used, _limit_of(account, get_plan(account.plan_code), key))


def _limit_of(account: Account, plan: Plan, key: str) -> int | None:
    # Seats follow the rule the Team page enforces.
    return seat_limit(plan, account.seats_purchased) if key == "seats" else plan.limit(key)


def _limit_usage(limit: Limit, used: int, maximum: int | None) -> LimitUsage:
    return LimitUsage(
        key=limit.key,
        label=limit.label,
        hint=limit.hint,
        used=used,
        limit=maximum,
        used_text=_format(limit, used),
        limit_text=_format(limit, maximum) if maximum is not None else "Unlimited",
    )


def account_info(session: Session, actor: Actor, now: datetime | None = None) -> AccountInfo:
    require(actor, Permission.INFO_VIEW)
    account = account_of(session, actor.account_id)
    plan = get_plan(account.plan_code)
    usage = account_usage(session, account, now or utcnow())
    users = dict(
        session.exec(
            select(User.status, func.count(col(User.id))).where(User.account_id == account.id).group_by(User.status)
        ).all()
    )
    custom_roles = session.exec(select(func.count(col(Role.id))).where(Role.account_id == account.id)).one()
    limits = tuple(_limit_usage(limit, usage[limit.key], _limit_of(account, plan, limit.key)) for limit in LIMITS)
    reached = {limit.key for limit in limits if limit.reached}
    add_ons = tuple(
        AddOnStatus(
            name=add_on.name,
            description=add_on.description,
            status=(
                NOT_INCLUDED
                if not plan.includes(add_on)
                else LIMIT_REACHED
                if reached.intersection(add_on.limits)
                else INCLUDED
            ),
        )
        for add_on in ADD_ONS
    )
    return AccountInfo(
        plan_name=plan.name,
        active_users=int(users.get("active", 0)),
        invited_users=int(users.get("invited", 0)),
        api_keys=usage["api_keys"],
        custom_roles=int(custom_roles),
        limits=limits,
        add_ons=add_ons,
        can_upgrade=actor.can(Permission.PLAN_MANAGE),
    )
