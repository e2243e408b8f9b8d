"""Setup for the end-to-end tests, run against the live app's own database and localstripe.

`LiveApp.setup(name, **kwargs)` calls one function of this module in a child process that has the
app's environment (its data directory, its Stripe), so `app.config` reads the same settings the app
runs with. Arguments and the result travel as JSON: functions take and return plain values.
`--serve` keeps one such process for a whole run (importing the app costs more than most calls):
it reads one call a line on stdin and answers each with a line on stdout (what functions print goes
to stderr).
"""

from __future__ import annotations

import json
import secrets
import sys
import traceback
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import col, select

from app.config import get_settings
from app.db import transaction
from app.demo import payment_methods
from app.models import Account, ApiKey, LedgerEntry, OutboxEmail, Payment, Person, Role, User, utcnow
from app.payments import gateway
from app.services import api_keys, customers, invoices, ledger, roles, team
from app.services.accounts import builtin_role, create_account, create_user
from app.services.api_keys import ensure_demo_key
from app.services.auth import issue_invitation
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from app.services.passwords import hash_password
from app.services.payment_methods import sync_payment_methods
from app.services.permissions import BUILTIN_ROLES, Actor, parse_permissions
from tests.stripe_fixtures import raw_card, save_card


def _owner_actor(user: User) -> Actor:
    name, permissions = BUILTIN_ROLES["owner"]
    return Actor(
        user_id=user.id,
        account_id=user.account_id,
        email=user.email,
        full_name=user.full_name,
        role_key="owner",
        role_name=name,
        permissions=permissions,
    )


def new_account(
    name: str,
    users: list[tuple[str, str, str]],
    *,
    timezone: str = "UTC",
    plan: str | None = None,
    invoice_priced: bool = False,
    visa: bool = False,
    demo_card: bool = False,
    api_keys: int = 0,
    credits_cents: int = 0,
    open_invoice_cents: int = 0,
    open_invoice_due_days: int = 14,
    renewal_open: bool = False,
) -> int:
    """A new account with users given as (email, full name, built-in role), all with the demo
    password; if asked, a plan, invoice pricing, a default Visa card saved through Stripe (or the
    demo's card), API keys, granted credits, an open invoice (due in `open_invoice_due_days`,
    past due when negative) and this month's plan renewal left
    unpaid (the period close as the job runs it on the 1st). The account's id."""
    password = get_settings().demo_password
    with transaction() as session:
        account = create_account(session, name=name, timezone=timezone)
        if plan is not None:
            account.plan_code = plan
            session.add(account)
        for email, full_name, role in users:
            create_user(
                session,
                account=account,
                email=email,
                full_name=full_name,
                role=builtin_role(session, role),
                password=password,
            )
        if invoice_priced:
            billing_settings(session, account.id).invoice_priced = True
        if visa:
            customer_id = customers.ensure_customer(session, account)
            card = gateway.attach_payment_method(customer_id, "pm_card_visa")
            gateway.set_default_payment_method(customer_id, card.id)
            sync_payment_methods(session, account.id)
        if demo_card:
            payment_methods.seed(session, account, utcnow())
        for number in range(api_keys):
            session.add(
                ApiKey(account_id=account.id, name=f"Key {number}", prefix="ld_e2e", secret_hash=secrets.token_hex(32))
            )
        if credits_cents:
            ledger.credit(
                session,
                account_id=account.id,
                amount_cents=credits_cents,
                source="grant",
                description="E2E credits",
                idempotency_key=f"e2e-credits:{account.id}",
            )
        if open_invoice_cents:
            invoices.issue_invoice(
                session,
                account.id,
                source="period_close",
                lines=[invoices.LineItem("Pro plan seats, Dec 1 – Dec 31, 2026", open_invoice_cents, quantity=5)],
                idempotency_key=f"e2e-open:{account.id}",
                status="open",
                due_at=utcnow() + timedelta(days=open_invoice_due_days),
            )
        if renewal_open:
            session.flush()
            invoices.close_period(session, account.id, invoices.billing_period(utcnow())[0])
        return account.id


def new_api_key(email: str, name: str) -> str:
    """A new API key of the user's account, made by the user as its owner; the full key."""
    with transaction() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        return api_keys.create_key(session, _owner_actor(user), name)[1]


def default_card(email: str, number: str) -> None:
    """Make a card from a raw test number (localstripe's, e.g. the one that needs 3-D Secure) the
    default card of the user's account."""
    card = raw_card(get_settings().stripe_api_base, number)
    with transaction() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        save_card(session, session.get_one(Account, user.account_id), card)


def set_api_key(email: str, key: str) -> None:
    """Give the user's account this exact API key (as the demo does)."""
    with transaction() as session:
        user = session.exec(select(User).where(User.email == email)).one()
        ensure_demo_key(session, user.account_id, key)


def set_password(email: str, password: str) -> None:
    with transaction() as session:
        person = session.exec(select(Person).where(Person.email == email)).one()
        person.password_hash = hash_password(password)
        session.add(person)


def invite_to_first_account(email: str, full_name: str, base_url: str) -> str:
    """A member invited to the first account (the demo's), without the Team page; the link."""
    with transaction() as session:
        account = session.exec(select(Account)).first()
        user = create_user(
            session,
            account=account,
            email=email,
            full_name=full_name,
            role=builtin_role(session, "member"),
            password=None,
            status="invited",
        )
        return issue_invitation(session, user, base_url=base_url)


def invite_into_account_of(owner_email: str, email: str, full_name: str, role: str, base_url: str) -> str:
    """The owner's account invites `email` (a person of another account, say) as the Team page
    does; the link in the invitation."""
    with transaction() as session:
        owner = session.exec(select(User).where(User.email == owner_email)).one()
        team.invite(
            session,
            _owner_actor(owner),
            email=email,
            full_name=full_name,
            role_id=builtin_role(session, role).id,
            base_url=base_url,
        )
    return link_in_last_email(email, "accept-invite")


def newest_account_of(email: str) -> dict[str, str]:
    """Name, plan and timezone of the account the person joined last."""
    with transaction() as session:
        account = session.exec(
            select(Account)
            .join(User, col(User.account_id) == Account.id)
            .where(User.email == email)
            .order_by(col(User.id).desc())
        ).first()
        assert account is not None, f"{email} is in no account"
        return {"name": account.name, "plan": account.plan_code, "timezone": account.timezone}


def link_in_last_email(to: str, path: str) -> str:
    """The line holding `path` (a link) in the newest email to that address in the outbox."""
    with transaction() as session:
        message = session.exec(
            select(OutboxEmail).where(OutboxEmail.to_address == to).order_by(col(OutboxEmail.id).desc())
        ).first()
        assert message is not None, f"no email to {to}"
        return next(line for line in message.body_text.splitlines() if path in line)


def console_pages() -> list[dict[str, Any]]:
    """The console pages as registered (route, sidebar label, section, order, permission, title),
    in the page table's order."""
    import app.pages  # noqa: F401  registers the pages
    from app.components.layout import NAV, PAGES

    titles = {o["route"]: o["title"].removesuffix(" · Ledgerdesk") for _, o in PAGES}
    return [
        {
            "route": e.route,
            "label": e.label,
            "section": e.section,
            "order": e.order,
            "permission": e.permission.value,
            "title": titles[e.route],
        }
        for e in NAV
    ]


def permission_matrix(tag: str, custom_role: str, custom_permissions: list[str]) -> dict[str, Any]:
    """The console pages (`console_pages`) and a new account with one user per built-in role and
    one of a custom role, with each user's permissions as stored."""
    from app.components.layout import SECTIONS

    pages = console_pages()
    password = get_settings().demo_password
    users: dict[str, User] = {}
    with transaction() as session:
        account = create_account(session, name=f"Matrix {tag}")
        account.plan_code = "business"
        for key in ("owner", "admin", "member"):
            users[key] = create_user(
                session,
                account=account,
                email=f"{key}-{tag}@matrix.example.com",
                full_name=f"{key.title()} {tag}",
                role=builtin_role(session, key),
                password=password,
            )
        custom = roles.create_role(
            session, _owner_actor(users["owner"]), name=custom_role, permissions=custom_permissions
        )
        users[custom_role] = create_user(
            session,
            account=account,
            email=f"custom-{tag}@matrix.example.com",
            full_name=f"Custom {tag}",
            role=custom,
            password=password,
        )
        return {
            "sections": list(SECTIONS),
            "pages": pages,
            "users": {
                role: {
                    "email": user.email,
                    "permissions": sorted(parse_permissions(session.get(Role, user.role_id).permissions)),
                }
                for role, user in users.items()
            },
        }


def charges_and_credits(account_id: int) -> dict[str, list[int]]:
    """What the account's card was charged at Stripe (its succeeded PaymentIntents, in cents) and
    the purchases credited to its balance."""
    with transaction() as session:
        credited = session.exec(
            select(LedgerEntry.amount_cents).where(
                LedgerEntry.account_id == account_id, LedgerEntry.source == "purchase"
            )
        ).all()
    return {"charged": _charged(account_id), "credited": list(credited)}


def charges_and_payments(email: str) -> dict[str, list[Any]]:
    """What the account of the user with this email was charged at Stripe (as charges_and_credits)
    and its Payments, as [kind, amount in cents, status]."""
    with transaction() as session:
        account_id = session.exec(select(User.account_id).where(User.email == email)).one()
        rows = session.exec(
            select(Payment.method, Payment.amount_cents, Payment.status).where(Payment.account_id == account_id)
        ).all()
    return {"charged": _charged(account_id), "payments": [list(row) for row in rows]}


def _charged(account_id: int) -> list[int]:
    settings = get_settings()
    with transaction() as session:
        customer_id = stripe_customer_id(session, account_id)
    listed = httpx.get(
        f"{settings.stripe_api_base}/v1/payment_intents",
        params={"limit": 100},
        auth=(settings.stripe_secret_key, ""),
        timeout=10,
    )
    listed.raise_for_status()
    return [
        intent["amount"]
        for intent in listed.json()["data"]
        if intent.get("customer") == customer_id and intent["status"] == "succeeded"
    ]


FUNCTIONS = {
    f.__name__: f
    for f in (
        new_account,
        new_api_key,
        set_api_key,
        default_card,
        set_password,
        invite_to_first_account,
        link_in_last_email,
        console_pages,
        invite_into_account_of,
        newest_account_of,
        permission_matrix,
        charges_and_credits,
        charges_and_payments,
    )
}


def serve() -> None:
    answers, sys.stdout = sys.stdout, sys.stderr
    for line in sys.stdin:
        call = json.loads(line)
        try:
            answer = {"result": FUNCTIONS[call["function"]](**call["arguments"])}
        except Exception:
            answer = {"error": traceback.format_exc()}
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        _, function, arguments = sys.argv
        result = FUNCTIONS[function](**json.loads(arguments))
        print(json.dumps(result))
