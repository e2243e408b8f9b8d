"""The plan catalogue. Plans live in code, not the database: an account stores only its plan code."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.services.errors import NotFound


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    seat_price_cents: int
    overage_credit_line_cents: int
    invoice_priced: bool
    included_seats: int
    limits: dict = field(default_factory=dict)
    features: tuple[str, ...] = ()


PLANS: dict[str, Plan] = {
    plan.code: plan
    for plan in (
        Plan(
            code="basic",
            name="Basic",
            seat_price_cents=0,
            overage_credit_line_cents=0,
            invoice_priced=False,
            included_seats=3,
            limits={"seats": 3, "api_keys": 2, "daily_requests": 10_000},
            features=("Usage credits", "Email support"),
        ),
        Plan(
            code="pro",
            name="Pro",
            seat_price_cents=2_900,
            overage_credit_line_cents=5_000,
            invoice_priced=False,
            included_seats=5,
            limits={"seats": 50, "api_keys": 20, "daily_requests": 1_000_000},
            features=("Usage credits", "Email support", "Overage protection", "Spend management"),
        ),
        Plan(
            code="business",
            name="Business",
            seat_price_cents=9_900,
            overage_credit_line_cents=50_000,
            invoice_priced=False,
            included_seats=10,
            limits={"seats": 500, "api_keys": 200, "daily_requests": 10_000_000},
            features=(
                "Usage credits",
                "Priority support",
                "Overage protection",
                "Spend management",
                "Audit log",
            ),
        ),
        Plan(
            code="custom",
            name="Custom",
            seat_price_cents=0,
            overage_credit_line_cents=500_000,
            invoice_priced=True,
            included_seats=0,
            limits={},
            features=(
                "Usage credits",
                "Dedicated support",
                "Overage protection",
                "Spend management",
                "Audit log",
                "Invoice billing",
            ),
        ),
    )
}


def get_plan(code: str) -> Plan:
    try:
        return PLANS[code]
    except KeyError:
        raise NotFound(f"Unknown plan {code!r}.") from None
