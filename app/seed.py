"""Demo data for an empty database: one company with an owner, an admin and a member."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from app.config import get_settings
from app.models import Account, utcnow
from app.services.accounts import builtin_role, create_account, create_user, ensure_builtin_roles

log = logging.getLogger("ledgerdesk.seed")

DEMO_USERS = (
    ("owner@example.com", "Olivia Owner", "owner"),
    ("admin@example.com", "Adam Admin", "admin"),
    ("member@example.com", "Mia Member", "member"),
)


def seed_demo(session: Session) -> bool:
    """Create the demo account when the database has no account. Returns whether it did."""
    ensure_builtin_roles(session)
    if session.exec(select(Account)).first() is not None:
        return False
    password = get_settings().demo_password
    account = create_account(session, name="Northwind Analytics", timezone="Europe/Berlin")
    account.domain = "northwind.example"
    account.plan_code = "pro"
    session.add(account)
    for email, name, role_key in DEMO_USERS:
        create_user(
            session,
            account=account,
            email=email,
            full_name=name,
            role=builtin_role(session, role_key),
            password=password,
        )
    now = utcnow()
    for seed_part in _demo_parts():
        seed_part(session, account, now)
    log.info("seeded the demo account %s", account.public_id)
    return True


def _demo_parts():
    """Each capability adds its own demo data."""
    from app.demo import (
        auto_recharge,
        invoices,
        metering,
        payment_methods,
        products,
        spend_management,
        subscription,
        usage_credits,
    )

    # Order matters: auto recharge needs the saved card; invoices bill the usage credits' month.
    return [
        usage_credits.seed,
        payment_methods.seed,
        auto_recharge.seed,
        metering.seed,
        spend_management.seed,
        invoices.seed,
        subscription.seed,
        products.seed,
    ]
