"""What the Info and Company pages show about the signed-in account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Account, User
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan


@dataclass(frozen=True)
class CompanyInfo:
    name: str
    public_id: str
    domain: str
    timezone: str
    language: str
    plan_name: str
    active_users: int
    invited_users: int


def company_info(session: Session, actor: Actor) -> CompanyInfo:
    require(actor, Permission.INFO_VIEW)
    account = session.get(Account, actor.account_id)
    counts = dict(
        session.exec(
            select(User.status, func.count(User.id)).where(User.account_id == actor.account_id).group_by(User.status)
        ).all()
    )
    return CompanyInfo(
        name=account.name,
        public_id=account.public_id,
        domain=account.domain,
        timezone=account.timezone,
        language=account.language,
        plan_name=get_plan(account.plan_code).name,
        active_users=counts.get("active", 0),
        invited_users=counts.get("invited", 0),
    )
