"""The plan catalogue. Plans live in code, not the database: an account stores only its plan code.

A plan's `limits` map keys of LIMITS to a maximum (a key that is absent means no limit); its
`features` name what it includes, among them the ADD_ONS the Info page shows. Paid plans are
priced per seat and month and include some seats; more can be bought (app/services/subscription.py),
and the seat limit is the larger of the two (see `team.seat_limit`). PLANS is in catalogue order,
cheapest first: moving to a later plan is an upgrade, to an earlier one a downgrade."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import NotFound

MB = 1024 * 1024


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

    def limit(self, key: str) -> int | None:
        return self.limits.get(key)

    def includes(self, add_on: AddOn) -> bool:
        return add_on.name in self.features

    @property
    def paid(self) -> bool:
        """Billed per seat each month to a card."""
        return self.seat_price_cents > 0 and not self.invoice_priced

    def monthly_cents(self, seats: int) -> int:
        """The monthly total: the seat price × seats."""
        return self.seat_price_cents * seats


@dataclass(frozen=True)
class Limit:
    key: str
    label: str
    # count | cents | bytes: how the Info page formats it
    unit: str
    hint: str = ""


LIMITS: tuple[Limit, ...] = (
    Limit("seats", "Seats", "count", "Active users and pending invitations."),
    Limit("api_keys", "API keys", "count"),
    Limit(
        "monthly_credits_cents",
        "Usage credits this month",
        "cents",
        "Credits bought this calendar month (UTC): top-ups and auto recharges.",
    ),
    Limit("daily_requests", "API requests today", "count", "Metered calls today (UTC)."),
    Limit("storage_bytes", "File storage", "bytes", "Uploaded files: the account logo and profile pictures."),
    Limit("products", "Products", "count", "Products your account has signed up for, the core one included."),
)


@dataclass(frozen=True)
class AddOn:
    name: str
    description: str
    # Limits whose exhaustion the add-on reports as "limit reached".
    limits: tuple[str, ...] = ()


ADD_ONS: tuple[AddOn, ...] = (
    AddOn("Usage credits", "Prepaid credits that metered API calls draw from.", ("monthly_credits_cents",)),
    AddOn("Metering API", "Record usage from your product with API keys.", ("api_keys", "daily_requests")),
    AddOn("Overage protection", "Keep calling the API below a zero balance; billed on the next invoice."),
    AddOn("Spend management", "A daily budget and spend notifications by email and webhook."),
    AddOn("Audit log", "A record of who changed what in the account."),
    AddOn("Invoice billing", "Pay by invoice instead of by card."),
)


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
            limits={
                "seats": 3,
                "api_keys": 2,
                "daily_requests": 10_000,
                "monthly_credits_cents": 50_000,
                "storage_bytes": 5 * MB,
                "products": 2,
            },
            features=("Usage credits", "Metering API", "Email support", "Spend management", "Audit log"),
        ),
        Plan(
            code="pro",
            name="Pro",
            seat_price_cents=2_900,
            overage_credit_line_cents=5_000,
            invoice_priced=False,
            included_seats=5,
            limits={
                "seats": 5,
                "api_keys": 20,
                "daily_requests": 1_000_000,
                "monthly_credits_cents": 1_000_000,
                "storage_bytes": 100 * MB,
                "products": 3,
            },
            features=(
                "Usage credits",
                "Metering API",
                "Email support",
                "Overage protection",
                "Spend management",
                "Audit log",
            ),
        ),
        Plan(
            code="business",
            name="Business",
            seat_price_cents=9_900,
            overage_credit_line_cents=50_000,
            invoice_priced=False,
            included_seats=10,
            limits={
                "seats": 10,
                "api_keys": 200,
                "daily_requests": 10_000_000,
                "monthly_credits_cents": 10_000_000,
                "storage_bytes": 1024 * MB,
            },
            features=(
                "Usage credits",
                "Metering API",
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
                "Metering API",
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
