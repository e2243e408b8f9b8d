"""What the console's shell shows of the signed-in user and their account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.services import profile
from app.services.company import logo_url
from app.services.customers import account_of
from app.services.invoices import past_due
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan


@dataclass(frozen=True)
class ConsoleHeader:
    account_name: str
    account_public_id: str
    plan_name: str
    logo_url: str
    picture_url: str
    # An open invoice's charge failed, or its due date passed.
    past_due: bool
    # An operator suspended the account: the console is read-only and says so.
    suspended: bool


def console_header(session: Session, actor: Actor) -> ConsoleHeader:
    require(actor, Permission.INFO_VIEW)
    account = account_of(session, actor.account_id)
    return ConsoleHeader(
        account_name=account.name,
        account_public_id=account.public_id,
        plan_name=get_plan(account.plan_code).name,
        logo_url=logo_url(account),
        # An operator viewing the account is nobody's person: no picture.
        picture_url="" if actor.viewing else profile.profile(session, actor).picture_url,
        past_due=past_due(session, actor.account_id),
        suspended=account.suspended_at is not None,
    )
