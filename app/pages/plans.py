"""Plans (seeds 000, 001): the current plan, its status, renewal and monthly total, the seats,
and the catalogue. Every change is confirmed with its amounts first; the rules and the
arithmetic live in app/services/subscription.py."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import reflex as rx

from app.components.card_form import confirm_payment_script
from app.components.dialogs import change_confirmation
from app.components.forms import form_error, form_notice
from app.components.layout import console_page, page_heading
from app.components.next_payment import next_payment_card
from app.db import transaction
from app.errors import DomainError
from app.services import subscription, upcoming
from app.services.money import format_usd
from app.services.permissions import Actor, Permission
from app.state.change_confirmation import ChangeConfirmationState
from app.state.next_payment import NextPaymentState
from app.state.session import SessionState, current_actor


@dataclass
class PlanRow:
    code: str = ""
    name: str = ""
    price: str = ""
    seats: str = ""
    features: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    action: str = ""


class PlansState(ChangeConfirmationState, NextPaymentState, rx.State):
    plan_name: str = ""
    status: str = ""
    renews_on: str = ""
    monthly_text: str = ""
    card: str = ""
    custom_priced: bool = False
    can_change_seats: bool = False
    seats: str = ""
    seats_used: int = 0
    included_seats: int = 0
    plans: list[PlanRow] = []
    error: str = ""
    notice: str = ""

    seats_value: str = ""
    seats_error: str = ""
    asking: bool = False

    # What the confirmation dialog is confirming: "plan" (a plan code) or "seats" (a number), at which amount.
    _kind: str = ""
    _target: str = ""
    _amount_cents: int = 0
    _request_key: str = ""

    def _reload(self, actor: Actor) -> None:
        with transaction() as session:
            current = subscription.overview(session, actor)
            next_payment = upcoming.for_plan(session, actor)
        self._show_next_payment(next_payment)
        self.plan_name, self.status, self.renews_on = current.plan_name, current.status, current.renews_on
        self.monthly_text, self.card, self.custom_priced = current.monthly_text, current.card, current.custom_priced
        self.can_change_seats = current.can_change_seats
        self.seats = str(current.seats) if current.seats is not None else "As agreed"
        self.seats_used, self.included_seats = current.seats_used, current.included_seats
        self.seats_value = str(current.seats or "")
        self.plans = [
            PlanRow(p.code, p.name, p.price, p.seats, list(p.features), list(p.limits), p.action) for p in current.plans
        ]

    @rx.event
    def load(self):
        self.error = self.notice = self.seats_error = ""
        self.asking = False
        self._close_confirmation()
        try:
            self._reload(current_actor(self, Permission.PLAN_MANAGE))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_seats(self, value: str):
        self.seats_value = value
        self.seats_error = ""

    def _quote(self, actor: Actor) -> subscription.Quote:
        with transaction() as session:
            if self._kind == "plan":
                return subscription.quote_plan(session, actor, self._target)
            return subscription.quote_seats(session, actor, self._target)

    def _ask(self, kind: str, target: str):
        """Work out the change's amounts and open the confirmation, or say why it cannot be made."""
        self.error = self.notice = self.seats_error = ""
        self._close_confirmation()
        self._kind, self._target = kind, target
        try:
            quote = self._quote(current_actor(self, Permission.PLAN_MANAGE))
        except subscription.CardRequired as exc:
            self._open_confirmation("Add a card first", [exc.message], card_required=True)
            return
        except DomainError as exc:
            if exc.field == "seats":
                self.seats_error = exc.message
            else:
                self.error = exc.message
            return
        self._show_quote(quote)

    def _show_quote(self, quote: subscription.Quote) -> None:
        """Open the confirmation on the quote's amounts, under a new request key."""
        self._amount_cents = quote.amount_cents
        self._request_key = secrets.token_urlsafe(16)
        self._open_confirmation(quote.title, list(quote.lines))

    @rx.event
    def ask_plan(self, plan_code: str):
        self._ask("plan", plan_code)

    @rx.event
    def ask_seats(self, form_data: dict):
        self.asking = True
        yield
        self._ask("seats", str(form_data.get("seats", self.seats_value)))
        self.asking = False

    def _change(self, actor: Actor) -> subscription.ChangeResult:
        with transaction() as session:
            if self._kind == "plan":
                return subscription.change_plan(
                    session,
                    actor,
                    plan_code=self._target,
                    request_key=self._request_key,
                    expected_amount_cents=self._amount_cents,
                )
            return subscription.change_seats(
                session,
                actor,
                seats_text=self._target,
                request_key=self._request_key,
                expected_amount_cents=self._amount_cents,
            )

    @rx.event
    def confirm(self):
        self.confirm_error = ""
        self.confirming = True
        yield
        try:
            actor = current_actor(self, Permission.PLAN_MANAGE)
            result = self._change(actor)
        except subscription.QuoteChanged as exc:
            self._requote(exc.message)
            return
        except DomainError as exc:
            self.confirming = False
            self.confirm_error = exc.message
            return
        if result.status == "requires_action":
            yield rx.call_script(confirm_payment_script(result.client_secret), callback=PlansState.payment_confirmed)
            return
        yield from self._finish(actor, result)

    def _requote(self, message: str) -> None:
        """The amounts moved (a new day began): show the new ones to confirm."""
        self.confirming = False
        try:
            self._show_quote(self._quote(current_actor(self, Permission.PLAN_MANAGE)))
            self.confirm_error = message
        except DomainError as exc:
            self.confirm_error = exc.message

    @rx.event
    def payment_confirmed(self, outcome: dict):
        """After Stripe.js finished 3-D Secure: confirming again with the same request key asks
        Stripe how the payment ended and applies the change once."""
        try:
            actor = current_actor(self, Permission.PLAN_MANAGE)
            result = self._change(actor)
        except DomainError as exc:
            self.confirming = False
            self.confirm_error = exc.message
            return
        if result.status == "requires_action":
            self.confirming = False
            self.confirm_error = str(outcome.get("error") or "The card could not be authenticated.")
            return
        yield from self._finish(actor, result)

    def _finish(self, actor: Actor, result: subscription.ChangeResult):
        self.confirming = False
        if result.status == "failed":
            self.confirm_error = f"{result.message or 'The payment failed.'} Your plan has not changed."
            self._request_key = secrets.token_urlsafe(16)
            return
        self._close_confirmation()
        what = f"You are now on {result.plan_name}" if self._kind == "plan" else f"You now have {result.seats} seats"
        amount = format_usd(abs(result.amount_cents))
        if result.status == "processing":
            self.notice = f"Your payment of {amount} is processing. The change applies as soon as it succeeds."
        elif result.amount_cents > 0:
            self.notice = f"{what}. {amount} was charged to your card; the paid invoice is on the Invoices page."
        elif result.amount_cents < 0:
            self.notice = f"{what}. {amount} was credited to your balance; it is listed in Balance History."
        else:
            self.notice = f"{what}."
        try:
            self._reload(actor)
        except DomainError as exc:
            self.error = exc.message
        # The header shows the plan too.
        yield SessionState.load_console


def _figure(label: str, value, figure_id: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.text(value, weight="bold", id=figure_id),
        spacing="1",
    )


def _current_plan() -> rx.Component:
    state = PlansState
    return rx.card(
        rx.vstack(
            rx.heading("Current plan", size="4", as_="h2"),
            rx.grid(
                _figure("Plan", state.plan_name, "current-plan-name"),
                rx.vstack(
                    rx.text("Status", size="2", color_scheme="gray"),
                    rx.badge(state.status, color_scheme="green", variant="soft", id="plan-status"),
                    spacing="1",
                ),
                _figure(
                    "Renews on",
                    rx.cond(
                        state.custom_priced,
                        "Invoiced monthly",
                        rx.cond(state.renews_on != "", state.renews_on, "Free: nothing to renew"),
                    ),
                    "plan-renews",
                ),
                _figure("Monthly total", state.monthly_text, "monthly-total"),
                columns=rx.breakpoints(initial="1", sm="2", lg="4"),
                spacing="4",
                width="100%",
            ),
            rx.cond(
                state.custom_priced,
                rx.callout(
                    "Your account has custom pricing and is invoiced: there are no card settings. "
                    f"To change your plan or seats, contact {subscription.SALES_EMAIL}.",
                    icon="receipt",
                    id="custom-priced",
                    width="100%",
                ),
                rx.cond(
                    state.card != "",
                    rx.text("Changes are charged to ", rx.text.strong(state.card, id="plan-card"), ".", size="2"),
                    rx.callout(
                        rx.text(
                            "No card on file. Paid plans need one. ",
                            rx.link(
                                "Go to Payment Methods",
                                href=subscription.PAYMENT_METHODS_PATH,
                                id="payment-methods-link",
                            ),
                        ),
                        icon="credit_card",
                        color_scheme="amber",
                        id="no-card",
                        width="100%",
                    ),
                ),
            ),
            spacing="3",
            align="stretch",
        ),
        id="current-plan",
    )


def _seats() -> rx.Component:
    state = PlansState
    return rx.card(
        rx.vstack(
            rx.heading("Seats", size="4", as_="h2"),
            rx.hstack(
                _figure("Seats purchased", state.seats, "seats-purchased"),
                _figure("Seats in use", state.seats_used, "seats-used"),
                spacing="6",
            ),
            rx.text(
                "The monthly total is the monthly rate × the number of seats purchased.", size="2", color_scheme="gray"
            ),
            rx.cond(
                state.can_change_seats,
                rx.form(
                    rx.vstack(
                        rx.el.label("Number of seats", html_for="seats", class_name="ld-label"),
                        rx.hstack(
                            rx.input(
                                id="seats",
                                name="seats",
                                value=state.seats_value,
                                on_change=state.set_seats,
                                input_mode="numeric",
                                width="8em",
                            ),
                            rx.button("Change seats", type="submit", loading=state.asking),
                            spacing="3",
                        ),
                        rx.text(
                            "At least ",
                            state.seats_used,
                            " (in use) and ",
                            state.included_seats,
                            " (included in ",
                            state.plan_name,
                            "). Adding seats is charged prorated now; "
                            "removing seats credits the unused days to your balance.",
                            size="1",
                            color_scheme="gray",
                        ),
                        rx.cond(
                            state.seats_error != "",
                            rx.text(state.seats_error, size="2", color_scheme="red", id="seats-error", role="alert"),
                        ),
                        spacing="1",
                        align="stretch",
                    ),
                    on_submit=state.ask_seats,
                    reset_on_submit=False,
                ),
                rx.cond(
                    state.custom_priced,
                    rx.text("Your seats are as agreed in your contract.", size="2", id="seats-fixed"),
                    rx.text(
                        state.plan_name,
                        " includes ",
                        state.included_seats,
                        " seats. Upgrade to a paid plan to add seats.",
                        size="2",
                        id="seats-fixed",
                    ),
                ),
            ),
            spacing="3",
            align="stretch",
        ),
        id="seats-card",
    )


def _plan_action(row: PlanRow) -> rx.Component:
    return rx.match(
        row.action,
        ("current", rx.badge("Current plan", color_scheme="green", size="2")),
        ("upgrade", rx.button("Upgrade to " + row.name, on_click=PlansState.ask_plan(row.code))),
        ("downgrade", rx.button("Downgrade to " + row.name, variant="soft", on_click=PlansState.ask_plan(row.code))),
        ("contact", rx.link(rx.button("Contact sales", variant="outline"), href=f"mailto:{subscription.SALES_EMAIL}")),
        rx.fragment(),
    )


def _plan_card(row: PlanRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(row.name, size="4", as_="h3"),
            rx.text(row.price, weight="bold"),
            rx.text(row.seats, size="2", color_scheme="gray"),
            rx.separator(),
            rx.el.ul(
                rx.foreach(row.features, lambda feature: rx.el.li(rx.text(feature, size="2"))),
                aria_label=row.name + " features",
            ),
            rx.el.ul(
                rx.foreach(row.limits, lambda limit: rx.el.li(rx.text(limit, size="2", color_scheme="gray"))),
                aria_label=row.name + " limits",
            ),
            rx.spacer(),
            _plan_action(row),
            spacing="2",
            height="100%",
            align="start",
        ),
        data_plan=row.code,
        data_current=rx.cond(row.action == "current", "true", "false"),
    )


@console_page(
    route="/plans",
    title="Plans",
    permission=Permission.PLAN_MANAGE,
    section="Administration",
    order=20,
    on_load=[PlansState.load],
)
def plans_page() -> rx.Component:
    state = PlansState
    return rx.vstack(
        page_heading("Plans", "Manage your plan, seats and the general subscription."),
        form_notice(state.notice),
        form_error(state.error),
        rx.callout(
            "Upgrading a plan immediately upgrades the account and bills the registered card. Downgrading a plan "
            "immediately credits the account's balance and steps down to the lower plan. Canceling a paid plan is "
            "done by downgrading to Basic. Paid plans need a card on file.",
            icon="info",
            color_scheme="gray",
            width="100%",
        ),
        _current_plan(),
        _seats(),
        next_payment_card(state),
        rx.heading("Available plans", size="4", as_="h2", margin_top="0.5em"),
        rx.grid(
            rx.foreach(state.plans, _plan_card),
            columns=rx.breakpoints(initial="1", sm="2", xl="4"),
            spacing="3",
            id="plan-catalogue",
        ),
        change_confirmation(state, subscription.PAYMENT_METHODS_PATH),
        spacing="4",
        align="stretch",
    )
