"""Plans (seeds 000, 001): the current plan, its status, renewal and monthly total, the seats,
and the catalogue. Every change is confirmed with its amounts first; the rules and the
arithmetic live in app/services/subscription.py."""

from __future__ import annotations

import reflex as rx

from app.components.dialogs import change_confirmation
from app.components.forms import error_of, field, form_messages
from app.components.layout import console_page, section_card
from app.components.next_payment import next_payment_card
from app.components.panels import no_payment_method, stat
from app.errors import DomainError
from app.services import subscription, upcoming
from app.services.money import format_usd
from app.services.permissions import Permission
from app.services.subscription import PlanCard
from app.state.card_payment import ConfirmedCardPaymentState
from app.state.events import event
from app.state.form import FormState
from app.state.next_payment import NextPaymentState
from app.state.session import SessionState, acting


class PlansState(ConfirmedCardPaymentState, FormState, NextPaymentState, rx.State):
    plan_name: rx.Field[str] = rx.field("")
    status: rx.Field[str] = rx.field("")
    renews_on: rx.Field[str] = rx.field("")
    monthly_text: rx.Field[str] = rx.field("")
    card: rx.Field[str] = rx.field("")
    custom_priced: rx.Field[bool] = rx.field(False)
    can_change_seats: rx.Field[bool] = rx.field(False)
    seats: rx.Field[str] = rx.field("")
    seats_used: rx.Field[int] = rx.field(0)
    included_seats: rx.Field[int] = rx.field(0)
    plans: rx.Field[list[PlanCard]] = rx.field(default_factory=list)
    # The purchased seats, the seats input's starting value.
    seats_value: rx.Field[str] = rx.field("")
    # What the confirmation is about (`confirm_action` "plan" with a plan code or "seats" with a
    # number, "card_required" when a card is missing), at which amount.
    _amount_cents: int = 0

    def _reload(self) -> None:
        with acting(self, Permission.PLAN_MANAGE) as (actor, session):
            current = subscription.overview(session, actor)
            self._show_next_payment(upcoming.for_plan(session, actor))
        self.plan_name, self.status, self.renews_on = current.plan_name, current.status, current.renews_on
        self.monthly_text, self.card, self.custom_priced = current.monthly_text, current.card, current.custom_priced
        self.can_change_seats = current.can_change_seats
        self.seats = str(current.seats) if current.seats is not None else "As agreed"
        self.seats_used, self.included_seats = current.seats_used, current.included_seats
        self.seats_value = str(current.seats or "")
        self.plans = list(current.plans)

    def _show_error(self, exc: DomainError, *, field: str | None = None) -> None:
        """A seat count's error under the seats input; any other at the top."""
        if exc.field == "seats":
            self.errors = {"seats": exc.message}
        else:
            self.error = exc.message

    @rx.event
    def load(self):
        self._close_confirm()
        with self._attempt():
            self._reload()

    def _quote(self, kind: str, target: str) -> subscription.Quote:
        with acting(self, Permission.PLAN_MANAGE) as (actor, session):
            if kind == "plan":
                return subscription.quote_plan(session, actor, target)
            return subscription.quote_seats(session, actor, target)

    def _ask_change(self, kind: str, target: str) -> None:
        """Work out the change's amounts and open the confirmation, or say why it cannot be made."""
        self._close_confirm()
        try:
            quote = self._quote(kind, target)
        except subscription.CardRequired as exc:
            self._ask("card_required", title="Add a card first", lines=[exc.message])
            return
        self._show_quote(kind, target, quote)

    def _show_quote(self, kind: str, target: str, quote: subscription.Quote) -> None:
        """Open the confirmation on the quote's amounts, under a new request key."""
        self._amount_cents = quote.amount_cents
        self._new_request()
        self._ask(kind, target=target, title=quote.title, lines=list(quote.lines))

    @event
    def ask_plan(self, plan_code: str):
        with self._attempt():
            self._ask_change("plan", plan_code)

    @rx.event
    def ask_seats(self, form_data: dict):
        with self._attempt("seats"):
            yield
            self._ask_change("seats", str(form_data.get("seats", "")))

    def _change(self) -> subscription.ChangeResult:
        kind, target, key, amount = self.confirm_action, self.confirm_target, self._charge_key, self._amount_cents
        with acting(self, Permission.PLAN_MANAGE) as (actor, session):
            if kind == "plan":
                return subscription.change_plan(
                    session, actor, plan_code=target, request_key=key, expected_amount_cents=amount
                )
            return subscription.change_seats(
                session, actor, seats_text=target, request_key=key, expected_amount_cents=amount
            )

    @event
    def confirm(self, request_key: str):
        if not self.confirm_action:
            return  # a click queued behind the one that made the change and closed the dialog
        self.confirm_error, self.confirming = "", True
        yield
        try:
            # The key the dialog showed: a second click on it replays this change.
            self._charge_key_for(request_key, self.confirm_action, self.confirm_target, str(self._amount_cents))
            result = self._change()
        except subscription.QuoteChanged as exc:
            self._requote(exc.message)
            return
        except DomainError as exc:
            self._payment_failed(exc.message)
            return
        yield self._charged(result)

    def _requote(self, message: str) -> None:
        """The amounts moved (a new day began): show the new ones to confirm."""
        self.confirming = False
        kind, target = self.confirm_action, self.confirm_target
        try:
            self._show_quote(kind, target, self._quote(kind, target))
            self.confirm_error = message
        except DomainError as exc:
            self.confirm_error = exc.message

    def _finishes_without_intent(self) -> bool:
        # Confirming again under the same request key asks Stripe how the payment ended.
        return True

    def _finish_payment(self, payment_intent: str, declined: str) -> subscription.ChangeResult:
        result = self._change()
        if result.status == "requires_action":
            raise DomainError(declined)
        return result

    def _payment_ended(self, result: subscription.ChangeResult):
        if result.status == "failed":
            self._payment_failed(f"{result.message or 'The payment failed.'} Your plan has not changed.")
            return None
        kind = self.confirm_action
        self._close_confirm()
        with self._attempt():
            self._reload()
        what = f"You are now on {result.plan_name}" if kind == "plan" else f"You now have {result.seats} seats"
        if result.status in ("processing", "pending"):
            amount = format_usd(result.amount_cents)
            self.notice = f"Your payment of {amount} is processing. The change applies as soon as it succeeds."
        else:
            # What was charged, credited or taken off the open invoice, as the service says.
            self.notice = " ".join(part for part in (f"{what}.", result.settlement) if part)
        # The header shows the plan too.
        return SessionState.load_console


def _current_plan() -> rx.Component:
    state = PlansState
    return section_card(
        "Current plan",
        rx.grid(
            stat("Plan", state.plan_name, "current-plan-name"),
            stat(
                "Status",
                rx.badge(
                    state.status,
                    color_scheme=rx.cond(state.status == "Past due", "red", "green"),
                    variant="soft",
                    id="plan-status",
                ),
            ),
            stat(
                "Renews on",
                rx.cond(
                    state.custom_priced,
                    "Invoiced monthly",
                    rx.cond(state.renews_on != "", state.renews_on, "Free: nothing to renew"),
                ),
                "plan-renews",
            ),
            stat("Monthly total", state.monthly_text, "monthly-total"),
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
                rx.text(
                    "Changes are charged to ",
                    rx.text.strong(state.card, id="plan-card"),
                    ". ",
                    # Seeds 000 and 002: the card on file can be changed from here.
                    rx.link(
                        "Change payment method",
                        href=subscription.PAYMENT_METHODS_PATH,
                        id="change-payment-method",
                        underline="always",
                    ),
                    size="2",
                ),
                no_payment_method("No card on file. Paid plans need one. ", subscription.PAYMENT_METHODS_PATH),
            ),
        ),
        rx.cond(
            state.status == "Past due",
            rx.callout(
                rx.text(
                    "An invoice is past due. Pay it on the ",
                    rx.link("Invoices", href="/billing/invoices"),
                    " page.",
                ),
                icon="triangle_alert",
                color_scheme="red",
                id="past-due",
                width="100%",
            ),
        ),
        id="current-plan",
    )


def _seats() -> rx.Component:
    state = PlansState
    return section_card(
        "Seats",
        rx.hstack(
            stat("Seats purchased", state.seats, "seats-purchased"),
            stat("Seats in use", state.seats_used, "seats-used"),
            spacing="6",
        ),
        rx.text(
            "The monthly total is the monthly rate × the number of seats purchased.", size="2", color_scheme="gray"
        ),
        rx.cond(
            state.can_change_seats,
            rx.form(
                field(
                    "Number of seats",
                    rx.fragment(
                        rx.hstack(
                            rx.input(
                                id="seats",
                                name="seats",
                                default_value=state.seats_value,
                                # A new count after a change starts the input again from it.
                                key=state.seats_value,
                                input_mode="numeric",
                                width="8em",
                            ),
                            rx.button("Change seats", type="submit", loading=state.busy == "seats"),
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
                    ),
                    field_id="seats",
                    error=error_of(state, "seats"),
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
        id="seats-card",
    )


def _plan_action(row: PlanCard) -> rx.Component:
    return rx.match(
        row.action,
        ("current", rx.badge("Current plan", color_scheme="green", size="2")),
        ("upgrade", rx.button("Upgrade to " + row.name, on_click=PlansState.ask_plan(row.code))),
        ("downgrade", rx.button("Downgrade to " + row.name, variant="soft", on_click=PlansState.ask_plan(row.code))),
        ("contact", rx.link(rx.button("Contact sales", variant="outline"), href=f"mailto:{subscription.SALES_EMAIL}")),
        rx.fragment(),
    )


def _plan_card(row: PlanCard) -> rx.Component:
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


@console_page("/plans", "Manage your plan, seats and the general subscription.", on_load=[PlansState.load])
def plans_page() -> list[rx.Component]:
    state = PlansState
    return [
        form_messages(state),
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
        change_confirmation(state, subscription.PAYMENT_METHODS_PATH, request_key=state.request_key),
    ]
