"""Discover products (seed 001: "check out what products are available now, compare pricing
plans, and sign up for more product as your business grows"). The catalogue lives in code, like
the plans (app/services/product_catalogue.py). Every account has the core product; others are
signed up for on a pricing plan of their own. A free plan starts at once; a paid one starts at
once too and the rest of the current month is invoiced now (prorated by day, like plan changes),
payable from the Invoices page; from then on the monthly period close bills it in advance
(`product_catalogue.monthly_charges`). How many products an account may have is a plan limit
("products")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.errors import Conflict, ValidationFailed
from app.models import AccountProduct, utcnow
from app.services import audit, invoices
from app.services.customers import account_of
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.payment_methods import default_method
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.product_catalogue import (
    CORE_PLAN,
    PRODUCTS,
    Product,
    ProductPlan,
    get_product,
    plan_of,
    product_count,
    signed_up,
)
from app.services.roles import lock_account
from app.services.subscription import CardRequired, prorate


@dataclass(frozen=True)
class PlanOffer:
    code: str
    name: str
    price: str
    features: tuple[str, ...]
    current: bool


@dataclass(frozen=True)
class ProductCard:
    code: str
    name: str
    description: str
    has_it: bool
    plans: tuple[PlanOffer, ...]


def catalogue(session: Session, actor: Actor) -> list[ProductCard]:
    require(actor, Permission.PLAN_MANAGE)
    mine = signed_up(session, actor.account_id)
    cards = []
    for product in PRODUCTS:
        current = CORE_PLAN if product.core else (mine[product.code].plan_code if product.code in mine else "")
        cards.append(
            ProductCard(
                code=product.code,
                name=product.name,
                description=product.description,
                has_it=product.core or product.code in mine,
                plans=tuple(
                    PlanOffer(
                        plan.code,
                        plan.name,
                        f"{format_usd(plan.monthly_cents)} per month" if plan.monthly_cents else "Free",
                        plan.features,
                        plan.code == current,
                    )
                    for plan in product.plans
                ),
            )
        )
    return cards


@dataclass(frozen=True)
class SignUpQuote:
    title: str
    amount_cents: int
    lines: tuple[str, ...]


def quote(
    session: Session, actor: Actor, product_code: str, plan_code: str, now: datetime | None = None
) -> SignUpQuote:
    """What signing up costs now: the rest of this month, prorated by day."""
    require(actor, Permission.PLAN_MANAGE)
    product, plan, amount = _checked(session, actor, product_code, plan_code, now or utcnow())
    lines: tuple[str, ...]
    if not plan.monthly_cents:
        lines = (f"{product.name} {plan.name} is free. It starts at once.",)
    else:
        lines = (
            f"{format_usd(plan.monthly_cents)} per month, billed with your monthly invoice.",
            f"Invoiced now for the rest of this month: {format_usd(amount)}. Pay it on the Invoices page.",
        )
    return SignUpQuote(f"Sign up for {product.name} {plan.name}", amount, lines)


def _checked(
    session: Session, actor: Actor, product_code: str, plan_code: str, now: datetime
) -> tuple[Product, ProductPlan, int]:
    product = get_product(product_code)
    plan = plan_of(product, plan_code)
    if product.core or product.code in signed_up(session, actor.account_id):
        raise Conflict(f"You already have {product.name}.")
    account = account_of(session, actor.account_id)
    account_plan = get_plan(account.plan_code)
    limit = account_plan.limit("products")
    if limit is not None and product_count(session, actor.account_id) >= limit:
        raise Conflict(
            f"Account limit reached: your {account_plan.name} plan includes {limit} products. "
            "Upgrade your plan to add more."
        )
    if (
        plan.monthly_cents
        and not billing_settings(session, actor.account_id).invoice_priced
        and default_method(session, actor.account_id) is None
    ):
        raise CardRequired("A paid product needs a payment method on file. Add one on the Payment Methods page.")
    return product, plan, prorate(0, plan.monthly_cents, now).amount_cents


def sign_up(
    session: Session,
    actor: Actor,
    product_code: str,
    plan_code: str,
    *,
    expected_amount_cents: int | None = None,
    now: datetime | None = None,
) -> AccountProduct:
    """Start the product now; a paid plan's rest of the month is invoiced at once. The account row
    is locked, so two sign-ups cannot both pass the product limit; the unique (account, product)
    makes a repeated sign-up a refusal, never a second invoice."""
    require(actor, Permission.PLAN_MANAGE)
    now = now or utcnow()
    lock_account(session, actor.account_id)
    product, plan, amount = _checked(session, actor, product_code, plan_code, now)
    if expected_amount_cents is not None and expected_amount_cents != amount:
        raise ValidationFailed(
            "The amount has changed since you opened this confirmation. Review it and confirm again."
        )
    row = AccountProduct(account_id=actor.account_id, product_code=product.code, plan_code=plan.code, started_at=now)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"You already have {product.name}.") from None
    if amount > 0:
        invoice, _ = invoices.issue_invoice(
            session,
            actor.account_id,
            source="product",
            lines=[invoices.LineItem(f"{product.name} {plan.name}, {_rest_of_month(now)}", amount)],
            idempotency_key=f"product:{actor.account_id}:{product.code}:{now.date().isoformat()}",
            status="open",
            due_at=invoices.due_date(session, actor.account_id, now),
            now=now,
        )
        row.invoice_public_id = invoice.public_id
        session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "plan.product",
        f"Signed up for {product.name} {plan.name}" + (f" ({format_usd(amount)} invoiced)" if amount else " (free)"),
    )
    return row


def _rest_of_month(now: datetime) -> str:
    return invoices.period_label(now.astimezone(UTC).date(), invoices.period_end_after(now))
