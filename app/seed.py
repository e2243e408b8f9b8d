"""Demo data for an empty database: one company with an owner, an admin and a member."""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from app.config import DEFAULT_DEMO_API_KEY, DEFAULT_DEMO_OPERATOR_API_KEY, DEFAULT_DEMO_PASSWORD, get_settings
from app.models import Account, ApiKey, OperatorApiKey, OperatorUser, Person, User, utcnow
from app.services import api_keys, auth
from app.services.accounts import builtin_role, create_account, create_user, ensure_builtin_roles
from app.services.passwords import verify_password

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
        operator,
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
        operator.seed,
    ]


def _demo_passwords() -> set[str]:
    return {DEFAULT_DEMO_PASSWORD, get_settings().demo_password}


def _demo_key_rows(session: Session) -> list[ApiKey]:
    digests = {api_keys.hash_key(key) for key in (DEFAULT_DEMO_API_KEY, get_settings().demo_api_key)}
    return list(
        session.exec(select(ApiKey).where(col(ApiKey.secret_hash).in_(digests), col(ApiKey.deleted_at).is_(None)))
    )


def _demo_password_users(session: Session) -> list[User]:
    """Active users that still sign in with a demo password. Only the seeded emails are checked
    (an Argon2 check per user would make start-up as slow as the user count): in production no
    new password may be a demo one (`passwords.check_new_password`), so no one else can hold it."""
    emails = [email for email, _name, _role in DEMO_USERS]
    rows = session.exec(
        select(User, Person)
        .join(Person, col(Person.id) == User.person_id)
        .where(col(User.email).in_(emails), User.status == "active")
    ).all()
    return [user for user, person in rows if any(verify_password(p, person.password_hash) for p in _demo_passwords())]


def _demo_operators(session: Session) -> list[OperatorUser]:
    """The seeded operator while it still signs in with a demo password."""
    from app.demo.operator import DEMO_OPERATOR

    user = session.exec(
        select(OperatorUser).where(OperatorUser.email == DEMO_OPERATOR[0], OperatorUser.status == "active")
    ).first()
    return [user] if user is not None and any(verify_password(p, user.password_hash) for p in _demo_passwords()) else []


def _demo_operator_keys(session: Session) -> list[OperatorApiKey]:
    from app.services.operator import keys

    return keys.live_demo_keys(session, {DEFAULT_DEMO_OPERATOR_API_KEY, get_settings().demo_operator_api_key})


def demo_leftovers(session: Session) -> str:
    """Why this database is not fit for production ("" when it is): a user who still has the
    published demo password, or the published demo API key still valid."""
    users = _demo_password_users(session)
    if users:
        return f"{users[0].email} still has the demo password"
    if _demo_key_rows(session):
        return "the demo API key is still valid"
    if operators := _demo_operators(session):
        return f"the operator {operators[0].email} still has the demo password"
    if _demo_operator_keys(session):
        return "the demo operator API key is still valid"
    return ""


def retire_demo(session: Session) -> list[str]:
    """Block every user that still has a demo password (ending their sessions) and delete the demo
    API key; what was done, one line each."""
    now = utcnow()
    done = []
    for user in _demo_password_users(session):
        assert user.id is not None  # a stored user
        user.status = "blocked"
        session.add(user)
        auth.revoke_sessions(session, user.id, now=now)
        done.append(f"blocked {user.email} (it had the demo password)")
    for key in _demo_key_rows(session):
        key.deleted_at = now
        session.add(key)
        done.append(f"deleted the demo API key {key.prefix}…")
    for operator in _demo_operators(session):
        operator.status = "blocked"
        session.add(operator)
        done.append(f"blocked the operator {operator.email} (it had the demo password)")
    for operator_key in _demo_operator_keys(session):
        operator_key.deleted_at = now
        session.add(operator_key)
        done.append(f"deleted the demo operator API key {operator_key.prefix}…")
    session.flush()
    return done
