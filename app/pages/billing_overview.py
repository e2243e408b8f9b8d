"""Billing Overview (seed 003): balance, available usage, settings at a glance, usage chart."""

from __future__ import annotations

import reflex as rx

from app.components.layout import console_page, page_heading
from app.components.next_payment import next_payment_card
from app.db import transaction
from app.errors import DomainError
from app.models import Account
from app.services import overview as overview_service
from app.services import upcoming
from app.services.billing_details import address_lines
from app.services.money import format_usd
from app.services.permissions import Permission
from app.services.timefmt import format_date
from app.state.next_payment import NextPaymentState
from app.state.session import current_actor


class OverviewState(NextPaymentState, rx.State):
    total_credits: str = ""
    usage_this_period: str = ""
    remaining_credits: str = ""
    overage_protection: str = ""
    daily_limit: str = ""
    available_to_use: str = ""
    runs_out: str = ""
    invoice_address: list[str] = []
    billing_email: str = ""
    auto_recharge: str = ""
    auto_recharge_reason: str = ""
    spend_management: str = ""
    chart: list[dict] = []
    error: str = ""

    @rx.event
    def load(self):
        try:
            actor = current_actor(self, Permission.BILLING_VIEW)
        except DomainError as exc:
            self.error = exc.message
            return
        with transaction() as session:
            figures = overview_service.overview(session, actor.account_id)
            settings = overview_service.billing_settings(session, actor.account_id)
            usage = overview_service.daily_usage(session, actor.account_id, days=30)
            runs_out = overview_service.runs_out_on(session, actor.account_id)
            account = session.get(Account, actor.account_id)
            next_payment = upcoming.for_billing(session, actor)
        self.error = ""
        self.total_credits = format_usd(figures.total_credits)
        self.usage_this_period = format_usd(figures.usage_this_period)
        self.remaining_credits = format_usd(figures.remaining_credits)
        self.overage_protection = format_usd(figures.overage_protection)
        self.daily_limit = (
            f"{format_usd(figures.used_today)} of {format_usd(figures.daily_budget)} used today"
            if figures.daily_budget is not None
            else f"{format_usd(figures.used_today)} used today (no daily limit)"
        )
        self.available_to_use = format_usd(figures.available_to_use)
        self.runs_out = (
            f"At the last 14 days' rate, your credits run out on {format_date(runs_out)}."
            if runs_out
            else "No usage in the last 14 days: your credits are not running down."
        )
        po_number = [f"PO {settings.invoice_po_number}"] if settings.invoice_po_number else []
        self.invoice_address = address_lines(settings, account.name) + po_number
        self.billing_email = settings.billing_email or "Not set: invoices go to the account owners."
        self.auto_recharge = "Enabled" if settings.auto_recharge_enabled else "Disabled"
        self.auto_recharge_reason = settings.auto_recharge_disabled_reason
        self.spend_management = "Enabled" if settings.spend_management_enabled else "Disabled"
        self._show_next_payment(next_payment)
        self.chart = [{"day": f"{day:%b %d}", "usage": cents / 100} for day, cents in usage]


def _figure(label: str, value: rx.Var, figure_id: str, *, strong: bool = False) -> rx.Component:
    return rx.hstack(
        rx.text(label, color_scheme="gray"),
        rx.spacer(),
        rx.text(value, weight="bold" if strong else "medium", id=figure_id),
        width="100%",
    )


def _setting_card(title: str, body: rx.Component, action: str, href: str, card_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(title, size="3", as_="h2"),
            body,
            rx.link(rx.button(action, variant="soft", size="1"), href=href),
            spacing="2",
            align="start",
        ),
        id=card_id,
    )


@console_page(
    route="/billing",
    title="Overview",
    permission=Permission.BILLING_VIEW,
    section="Billing",
    order=100,
    on_load=[OverviewState.load],
)
def overview_page() -> rx.Component:
    return rx.vstack(
        page_heading("Overview", "A snapshot of your credits and billing settings."),
        rx.grid(
            rx.card(
                rx.vstack(
                    rx.heading("Your Credit Balance", size="4", as_="h2"),
                    _figure("Total Credits", OverviewState.total_credits, "total-credits"),
                    _figure("Usage This Period", OverviewState.usage_this_period, "usage-this-period"),
                    rx.separator(),
                    _figure("Remaining Credits", OverviewState.remaining_credits, "remaining-credits", strong=True),
                    spacing="3",
                ),
            ),
            rx.card(
                rx.vstack(
                    rx.heading("Your Available Usage", size="4", as_="h2"),
                    _figure("Remaining Credits", OverviewState.remaining_credits, "available-remaining"),
                    _figure("Overage Protection", OverviewState.overage_protection, "overage-protection"),
                    _figure("Spend Management Daily Hard Limit", OverviewState.daily_limit, "daily-limit"),
                    rx.separator(),
                    _figure("Available to Use", OverviewState.available_to_use, "available-to-use", strong=True),
                    spacing="3",
                ),
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
        ),
        next_payment_card(OverviewState),
        rx.card(
            rx.vstack(
                rx.heading("Credits consumed per day (UTC), last 30 days", size="3", as_="h2"),
                rx.recharts.bar_chart(
                    rx.recharts.bar(data_key="usage", fill="var(--accent-9)", name="Credits used ($)"),
                    rx.recharts.x_axis(data_key="day"),
                    rx.recharts.y_axis(),
                    rx.recharts.graphing_tooltip(),
                    data=OverviewState.chart,
                    height=220,
                    width="100%",
                ),
                rx.text(OverviewState.runs_out, size="2", id="runs-out"),
                width="100%",
            ),
            width="100%",
        ),
        rx.grid(
            _setting_card(
                "Invoice Address",
                rx.vstack(rx.foreach(OverviewState.invoice_address, lambda line: rx.text(line, size="2")), spacing="0"),
                "Edit address",
                "/billing/invoice-address",
                "invoice-address-card",
            ),
            _setting_card(
                "Invoice Billing Email",
                rx.text(OverviewState.billing_email, size="2"),
                "Edit email",
                "/billing/invoice-notifications",
                "billing-email-card",
            ),
            _setting_card(
                "Auto Recharge",
                rx.vstack(
                    rx.badge(OverviewState.auto_recharge, id="auto-recharge-status"),
                    rx.cond(
                        OverviewState.auto_recharge_reason != "",
                        rx.text(
                            OverviewState.auto_recharge_reason,
                            size="1",
                            color_scheme="amber",
                            id="auto-recharge-reason",
                        ),
                    ),
                    spacing="1",
                ),
                "Modify",
                "/billing/auto-recharge",
                "auto-recharge-card",
            ),
            _setting_card(
                "Spend Management",
                rx.badge(OverviewState.spend_management, id="spend-management-status"),
                "Modify",
                "/billing/spend-management",
                "spend-management-card",
            ),
            columns=rx.breakpoints(initial="1", sm="2", lg="4"),
            spacing="4",
            width="100%",
        ),
        spacing="4",
        align="stretch",
    )
