"""Billing Overview (seed 003): balance, available usage, settings at a glance, usage chart."""

from __future__ import annotations

import reflex as rx

from app.components.layout import console_page, section_card
from app.components.next_payment import next_payment_card
from app.services import billing_overview, getting_started
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.live import LiveState
from app.state.next_payment import NextPaymentState
from app.state.session import SessionState, acting


class OverviewState(FormState, NextPaymentState, LiveState, rx.State):
    total_credits: rx.Field[str] = rx.field("")
    earlier_usage: rx.Field[str] = rx.field("")
    usage_this_period: rx.Field[str] = rx.field("")
    remaining_credits: rx.Field[str] = rx.field("")
    overage_protection: rx.Field[str] = rx.field("")
    daily_limit: rx.Field[str] = rx.field("")
    available_to_use: rx.Field[str] = rx.field("")
    runs_out: rx.Field[str] = rx.field("")
    expiring_soon: rx.Field[str] = rx.field("")
    invoice_address: rx.Field[list[str]] = rx.field(default_factory=list)
    billing_email: rx.Field[str] = rx.field("")
    auto_recharge: rx.Field[str] = rx.field("")
    auto_recharge_reason: rx.Field[str] = rx.field("")
    spend_management: rx.Field[str] = rx.field("")
    chart: rx.Field[list[dict]] = rx.field(default_factory=list)
    getting_started: rx.Field[list[getting_started.Step]] = rx.field(default_factory=list)

    @rx.event
    def load(self):
        with self._attempt():
            self._watch_live(self._read())

    def _live_refresh(self) -> None:
        """Only what can move while the page is open (cheap enough for several updates a second);
        everything when the UTC day has turned since the page was read."""
        with acting(self, Permission.BILLING_VIEW) as (actor, session):
            figures = billing_overview.live_figures(session, actor)
        if not self.chart or self.chart[-1]["day"] != figures.today:
            self._read()
            return
        self._show_live(figures)
        self.chart = [*self.chart[:-1], {**self.chart[-1], "usage": figures.used_today}]

    def _read(self) -> int:
        """Show the account's figures; returns its id."""
        with acting(self, Permission.BILLING_VIEW) as (actor, session):
            view = billing_overview.overview_view(session, actor)
            self._show_live(view.live)
            self.overage_protection, self.runs_out = view.overage_protection, view.runs_out
            self.invoice_address, self.billing_email = view.invoice_address, view.billing_email
            self.spend_management, self.chart = view.spend_management, view.chart
            self._show_next_payment(view.next_payment)
            self.getting_started = view.getting_started
        return actor.account_id

    def _show_live(self, figures: billing_overview.LiveFigures) -> None:
        self.total_credits, self.usage_this_period = figures.total_credits, figures.usage_this_period
        self.earlier_usage, self.remaining_credits = figures.earlier_usage, figures.remaining_credits
        self.daily_limit, self.available_to_use = figures.daily_limit, figures.available_to_use
        self.expiring_soon = figures.expiring_soon
        self.auto_recharge, self.auto_recharge_reason = figures.auto_recharge, figures.auto_recharge_reason

    @rx.event
    def dismiss_getting_started(self):
        with self._attempt("dismiss"), acting(self, Permission.BILLING_MANAGE) as (actor, session):
            getting_started.dismiss(session, actor)
            self.getting_started = []


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


def _step(step: getting_started.Step) -> rx.Component:
    return rx.hstack(
        rx.cond(
            step.done,
            rx.icon("circle-check", color="var(--green-9)", size=18),
            rx.icon("circle", color="var(--gray-8)", size=18),
        ),
        rx.cond(
            step.done,
            rx.text(step.title, color_scheme="gray", text_decoration="line-through"),
            rx.link(step.title, href=step.href),
        ),
        rx.text(rx.cond(step.done, "Done", ""), size="1", color_scheme="green"),
        align="center",
        spacing="2",
        class_name="ld-getting-started-step",
        custom_attrs={"data-step": step.key, "data-done": rx.cond(step.done, "true", "false")},
    )


def _getting_started() -> rx.Component:
    return rx.cond(
        OverviewState.getting_started.length() > 0,
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading("Getting started", size="3", as_="h2"),
                    rx.spacer(),
                    rx.cond(
                        SessionState.permissions.contains(Permission.BILLING_MANAGE.value),
                        rx.button(
                            "Dismiss",
                            variant="ghost",
                            size="1",
                            on_click=OverviewState.dismiss_getting_started,
                            loading=OverviewState.busy == "dismiss",
                            id="dismiss-getting-started",
                        ),
                    ),
                    width="100%",
                ),
                rx.foreach(OverviewState.getting_started, _step),
                spacing="2",
                width="100%",
            ),
            id="getting-started",
            width="100%",
        ),
    )


@console_page("/billing", "A snapshot of your credits and billing settings.", on_load=[OverviewState.load])
def overview_page() -> list[rx.Component]:
    return [
        _getting_started(),
        rx.grid(
            section_card(
                "Your Credit Balance",
                _figure("Total Credits", OverviewState.total_credits, "total-credits"),
                _figure("Usage Invoiced in Earlier Periods", OverviewState.earlier_usage, "earlier-usage"),
                _figure("Usage This Period", OverviewState.usage_this_period, "usage-this-period"),
                rx.separator(),
                _figure("Remaining Credits", OverviewState.remaining_credits, "remaining-credits", strong=True),
                rx.cond(
                    OverviewState.expiring_soon != "",
                    rx.callout(OverviewState.expiring_soon, icon="clock", color_scheme="amber", id="expiring-soon"),
                ),
            ),
            section_card(
                "Your Available Usage",
                _figure("Remaining Credits", OverviewState.remaining_credits, "available-remaining"),
                _figure("Overage Protection", OverviewState.overage_protection, "overage-protection"),
                _figure("Spend Management Daily Hard Limit", OverviewState.daily_limit, "daily-limit"),
                rx.separator(),
                _figure("Available to Use", OverviewState.available_to_use, "available-to-use", strong=True),
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
    ]
