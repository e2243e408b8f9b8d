"""Small builders for test data, through the same services the app uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlmodel import Session

from app.models import Account, LedgerEntry, Payment, PaymentMethod, TaxRegistration, User, utcnow
from app.services import api_keys, auth, company, invoices, ledger, roles, spend, webhooks
from app.services.accounts import builtin_role, create_account, create_user
from app.services.customers import account_of
from app.services.permissions import BUILTIN_ROLES, Actor

PASSWORD = "correct-horse-battery"
# The smallest file the logo check takes for a PNG.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x08\x06\x00\x00\x00" + b"\x00" * 64


def make_account(session: Session, name: str = "Acme Inc") -> Account:
    return create_account(session, name=name)


def make_user(
    session: Session,
    account: Account,
    email: str,
    role_key: str = "owner",
    *,
    password: str | None = PASSWORD,
    status: str = "active",
) -> User:
    return create_user(
        session,
        account=account,
        email=email,
        full_name=email.split("@")[0].title(),
        role=builtin_role(session, role_key),
        password=password,
        status=status,
    )


class Owner(NamedTuple):
    """An account's owner as an actor, and the account: `actor, account = owner`."""

    actor: Actor
    account: Account


def owner_and_account(session: Session, role_key: str = "owner", email: str = "owner@example.com") -> Owner:
    """A new account with one user of that role, committed; the user's actor and the account."""
    account = make_account(session)
    user = make_user(session, account, email, role_key)
    session.commit()
    return Owner(actor_for(user, role_key), account)


def actor_for(user: User, role_key: str) -> Actor:
    """The actor for a user holding a built-in role (without signing in)."""
    name, permissions = BUILTIN_ROLES[role_key]
    return Actor(
        user_id=user.id,
        account_id=user.account_id,
        email=user.email,
        full_name=user.full_name,
        role_key=role_key,
        role_name=name,
        permissions=permissions,
    )


def grant(
    session: Session,
    account_id: int,
    cents: int,
    *,
    description: str = "Grant",
    key: str | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Credits given to the account (source "grant"), under `key` (by default one per account)."""
    return ledger.credit(
        session,
        account_id=account_id,
        amount_cents=cents,
        source="grant",
        description=description,
        idempotency_key=key or f"grant:{account_id}",
        now=now,
    )


def signed_in_token(session: Session, email: str, password: str = PASSWORD) -> str:
    """A session token got the way the browser gets one (sign in, then trade the handoff code)."""
    outcome = auth.sign_in(session, email, password)
    assert outcome.error == "", outcome.error
    token = auth.start_session(session, outcome.handoff_code, binding=outcome.binding)
    assert token, f"{email} could not sign in"
    return token


def signed_in_actor(session: Session, email: str) -> Actor:
    """The actor the app builds for this user's session: their role's permissions from the database."""
    return auth.actor_for_session_token(session, signed_in_token(session, email))


@dataclass(frozen=True)
class Populated:
    """An account with one of everything a user can act on by id."""

    account_id: int
    owner_email: str
    member: str  # public ids of users: active member, pending invitation, blocked member
    member_user_id: int
    invitee: str
    blocked: str
    role_id: int  # a custom role holding only info.view, given to nobody
    api_key: str  # public id
    full_key: str
    default_card: str  # Stripe ids of the saved cards
    other_card: str
    payment_intent: str  # of a card top-up waiting for 3-D Secure
    logo: str  # the logo's path under the uploads dir
    invoice: str  # public id of an open invoice
    invoice_payment_intent: str  # of a payment of that invoice waiting for 3-D Secure
    tax_registration: str  # public id


def make_populated_account(session: Session, slug: str, *, plan_code: str = "business") -> Populated:
    """Users, a custom role, an API key, two saved cards (rows only: no Stripe), a pending card
    payment, a webhook URL with one delivery, a logo, credits, an open invoice with a pending
    payment and a tax registration; committed."""
    account = make_account(session, f"{slug.title()} Inc")
    account.plan_code = plan_code
    owner = make_user(session, account, f"owner@{slug}.test")
    owner_actor = signed_in_actor(session, owner.email)
    member = make_user(session, account, f"member@{slug}.test", "member")
    invitee = make_user(session, account, f"invitee@{slug}.test", "member", password=None, status="invited")
    blocked = make_user(session, account, f"blocked@{slug}.test", "member", status="blocked")
    role = roles.create_role(session, owner_actor, name="Viewer", permissions=[])
    key, full_key = api_keys.create_key(session, owner_actor, "Production")
    account_of(session, account.id).stripe_customer_id = f"cus_{slug}"
    cards = [
        PaymentMethod(
            account_id=account.id,
            stripe_payment_method_id=f"pm_{slug}_{name}",
            brand="visa",
            last4=last4,
            exp_month=12,
            exp_year=2030,
            is_default=name == "default",
        )
        for name, last4 in (("default", "4242"), ("other", "4444"))
    ]
    session.add_all(cards)
    session.add(
        Payment(
            account_id=account.id,
            amount_cents=2_500,
            method="card",
            status="requires_action",
            stripe_payment_intent_id=f"pi_{slug}",
            stripe_payment_method_id=cards[0].stripe_payment_method_id,
            idempotency_key=f"card:{account.id}:populated",
            created_by_user_id=owner.id,
        )
    )
    spend.save_settings(
        session,
        owner_actor,
        enabled=False,
        daily_budget="",
        notify_threshold="",
        webhook_url=f"https://hooks.{slug}.test/ledgerdesk",
    )
    webhooks.send_test_event(session, owner_actor)
    company.save_logo(session, owner_actor, PNG)
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=10_000,
        source="grant",
        description="Welcome credits",
        idempotency_key=f"grant:{account.id}",
    )
    invoice, _ = invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[invoices.LineItem("Usage", 1_234)],
        idempotency_key=f"period:{account.id}:populated",
        status="open",
        due_at=utcnow() + timedelta(days=14),
    )
    session.add(
        Payment(
            account_id=account.id,
            amount_cents=1_234,
            method="invoice",
            status="requires_action",
            stripe_payment_intent_id=f"pi_{slug}_invoice",
            stripe_payment_method_id=cards[0].stripe_payment_method_id,
            idempotency_key=f"invoice:{account.id}:{invoice.public_id}:populated",
            invoice_id=invoice.id,
            created_by_user_id=owner.id,
        )
    )
    registration = TaxRegistration(
        account_id=account.id, country="DE", type="eu_vat", value="DE129273398", stripe_tax_id=f"txi_{slug}"
    )
    session.add(registration)
    session.commit()
    return Populated(
        account_id=account.id,
        owner_email=owner.email,
        member=member.public_id,
        member_user_id=member.id,
        invitee=invitee.public_id,
        blocked=blocked.public_id,
        role_id=role.id,
        api_key=key.public_id,
        full_key=full_key,
        default_card=cards[0].stripe_payment_method_id,
        other_card=cards[1].stripe_payment_method_id,
        payment_intent=f"pi_{slug}",
        logo=session.get(Account, account.id).logo_path,
        invoice=invoice.public_id,
        invoice_payment_intent=f"pi_{slug}_invoice",
        tax_registration=registration.public_id,
    )


class StripeReached(Exception):
    """A service got past its own checks and called the payment gateway (stubbed by `gateway_calls`)."""
