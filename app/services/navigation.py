"""The console's page table: every console page's route, title, the permission it needs and its
place in the sidebar. One source for the shell (app/components/layout.py draws the sidebar and
registers the pages from it) and for the server's choice of where a signed-in user lands."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from app.services.permissions import Actor, Permission

SECTIONS = ("Administration", "Billing")


@dataclass(frozen=True)
class ConsolePage:
    """A console page: its title, who may open it and its place in the sidebar."""

    route: str
    title: str
    permission: Permission
    section: str | None
    order: int
    nav_label: str | None = None

    @property
    def label(self) -> str:
        return self.nav_label or self.title


P = Permission
ADMIN, BILLING = SECTIONS
# Every console page; its module registers the page's body with @console_page(route, ...).
NAV: tuple[ConsolePage, ...] = (
    ConsolePage("/profile", "Your Profile", P.INFO_VIEW, None, -1),
    ConsolePage("/", "Info", P.INFO_VIEW, None, 0),
    ConsolePage("/company", "Company information", P.COMPANY_VIEW, ADMIN, 10, nav_label="Company"),
    ConsolePage("/plans", "Plans", P.PLAN_MANAGE, ADMIN, 20),
    ConsolePage("/products", "Discover Products", P.PLAN_MANAGE, ADMIN, 25),
    ConsolePage("/api-keys", "API Keys", P.API_KEYS_MANAGE, ADMIN, 40),
    ConsolePage("/team", "Team", P.TEAM_MANAGE, ADMIN, 40),
    ConsolePage("/roles", "Roles", P.ROLES_MANAGE, ADMIN, 50),
    ConsolePage("/audit-log", "Audit Log", P.AUDIT_VIEW, ADMIN, 70),
    ConsolePage("/billing", "Overview", P.BILLING_VIEW, BILLING, 100),
    ConsolePage("/billing/invoices", "Invoices", P.BILLING_VIEW, BILLING, 110),
    ConsolePage("/billing/payment-methods", "Payment Methods", P.BILLING_VIEW, BILLING, 120),
    ConsolePage("/billing/spend-management", "Spend Management", P.BILLING_VIEW, BILLING, 130),
    ConsolePage("/billing/add-usage-credits", "Add Usage Credits", P.BILLING_MANAGE, BILLING, 140),
    ConsolePage("/billing/auto-recharge", "Auto Recharge", P.BILLING_VIEW, BILLING, 150),
    ConsolePage("/billing/invoice-address", "Invoice Address", P.BILLING_VIEW, BILLING, 160),
    ConsolePage("/billing/invoice-notifications", "Invoice Notifications", P.BILLING_VIEW, BILLING, 170),
    ConsolePage("/billing/tax-settings", "Tax Settings", P.BILLING_VIEW, BILLING, 180),
    ConsolePage("/billing/usage", "Usage", P.BILLING_VIEW, BILLING, 185),
    ConsolePage("/billing/balance-history", "Balance History", P.BILLING_VIEW, BILLING, 190),
)


def page_at(route: str) -> ConsolePage | None:
    return next((entry for entry in NAV if entry.route == route), None)


def landing(actor: Actor, path: str) -> str:
    """Where `actor` lands after signing in when `path` (already a safe same-site path) was asked
    for: there when their role may open it, else their first page in the sidebar's order (Info,
    which every role may open), so nobody lands on "No access"."""
    page = page_at(urlsplit(path).path.rstrip("/") or "/")
    if page is None or actor.can(page.permission):
        return path
    allowed = [
        entry for entry in sorted(NAV, key=lambda e: e.order) if entry.order >= 0 and actor.can(entry.permission)
    ]
    return allowed[0].route if allowed else "/profile"
