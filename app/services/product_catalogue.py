"""The operator's product catalogue (in code, like the plans) and which products an account and
its users have. Every account has the core product; the others are rows of `account_product`.
Kept apart from the sign-up rules (app/services/products.py) so that Team and Info can use it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from app.errors import NotFound
from app.models import AccountProduct


@dataclass(frozen=True)
class ProductPlan:
    code: str
    name: str
    monthly_cents: int
    features: tuple[str, ...]


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    description: str
    plans: tuple[ProductPlan, ...]
    core: bool = False


CORE = "metering"
CORE_PLAN = "included"
PRODUCTS: tuple[Product, ...] = (
    Product(
        CORE,
        "Ledgerdesk Metering",
        "Usage credits, the metering API and this console.",
        (ProductPlan(CORE_PLAN, "Included", 0, ("Usage credits", "Metering API", "Billing console")),),
        core=True,
    ),
    Product(
        "analytics",
        "Usage Analytics",
        "Dashboards of your customers' usage, by endpoint and by day.",
        (
            ProductPlan("free", "Free", 0, ("7 days of history", "1 dashboard")),
            ProductPlan("standard", "Standard", 1_900, ("13 months of history", "10 dashboards", "CSV export")),
        ),
    ),
    Product(
        "alerts",
        "Smart Alerts",
        "Notifications when usage or spend moves unexpectedly.",
        (
            ProductPlan("free", "Free", 0, ("Email alerts", "3 alert rules")),
            ProductPlan("pro", "Pro", 900, ("Email, Slack and webhook alerts", "Unlimited rules", "Anomaly detection")),
        ),
    ),
    Product(
        "vault",
        "Storage Vault",
        "Keep invoices, contracts and usage exports in one place.",
        (
            ProductPlan("starter", "Starter", 0, ("1 GB",)),
            ProductPlan("plus", "Plus", 1_500, ("100 GB", "Version history")),
        ),
    ),
)
BY_CODE = {product.code: product for product in PRODUCTS}


def get_product(code: str) -> Product:
    if code not in BY_CODE:
        raise NotFound("No such product.")
    return BY_CODE[code]


def plan_of(product: Product, plan_code: str) -> ProductPlan:
    plan = next((p for p in product.plans if p.code == plan_code), None)
    if plan is None:
        raise NotFound("No such pricing plan.")
    return plan


def signed_up(session: Session, account_id: int) -> dict[str, AccountProduct]:
    rows = session.exec(select(AccountProduct).where(AccountProduct.account_id == account_id))
    return {row.product_code: row for row in rows}


def active_codes(session: Session, account_id: int) -> list[str]:
    """The account's products, the core one first, in catalogue order."""
    mine = signed_up(session, account_id)
    return [p.code for p in PRODUCTS if p.core or p.code in mine]


def product_count(session: Session, account_id: int) -> int:
    return len(active_codes(session, account_id))


def names(codes: list[str]) -> list[str]:
    return [BY_CODE[code].name for code in codes if code in BY_CODE]


def monthly_charges(session: Session, account_id: int) -> list[tuple[str, int]]:
    """(description, cents) of each paid product plan the account has: what renews every month."""
    charges = []
    for code, row in sorted(signed_up(session, account_id).items()):
        if code in BY_CODE:
            product = BY_CODE[code]
            plan = plan_of(product, row.plan_code)
            if plan.monthly_cents:
                charges.append((f"{product.name} {plan.name}", plan.monthly_cents))
    return charges
