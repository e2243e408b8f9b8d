"""Discover Products (seed 001): the operator's products with their pricing plans side by side,
the ones the account has; signing up, switching a product's plan or cancelling it after a
confirmation with the amount."""

from __future__ import annotations

import secrets

import reflex as rx

from app.components.dialogs import change_confirmation
from app.components.forms import form_messages
from app.components.layout import console_page
from app.errors import DomainError
from app.services import products, subscription
from app.services.permissions import Permission
from app.services.products import PlanOffer, ProductCard
from app.state.card_payment import ConfirmedCardPaymentState
from app.state.events import event
from app.state.form import FormState
from app.state.session import acting


class ProductsState(ConfirmedCardPaymentState, FormState, rx.State):
    catalogue: rx.Field[list[ProductCard]] = rx.field(default_factory=list)
    # The change the confirmation is about (`confirm_target` "product:plan", plan "" to cancel),
    # at which amount, and the request key that makes one confirmation one change.
    _amount_cents: int = 0
    _request_key: str = ""

    def _reload(self) -> None:
        with acting(self, Permission.PLAN_MANAGE) as (actor, session):
            self.catalogue = products.catalogue(session, actor)

    @rx.event
    def load(self):
        self._close_confirm()
        with self._attempt():
            self._reload()

    @event
    def ask_change(self, product_code: str, plan_code: str):
        """Sign up (the account does not have the product), change its plan, or cancel it (plan "")."""
        self._close_confirm()
        with self._attempt():
            try:
                with acting(self, Permission.PLAN_MANAGE) as (actor, session):
                    quote = products.quote(session, actor, product_code, plan_code)
            except subscription.CardRequired as exc:
                self._ask("card_required", title="A payment method is needed", lines=[exc.message])
                return
            self._amount_cents, self._request_key = quote.amount_cents, secrets.token_urlsafe(16)
            self._ask("change", target=f"{product_code}:{plan_code}", title=quote.title, lines=list(quote.lines))

    def _change(self) -> products.ProductResult:
        product_code, _, plan_code = self.confirm_target.partition(":")
        with acting(self, Permission.PLAN_MANAGE) as (actor, session):
            return products.change(
                session,
                actor,
                product_code,
                plan_code,
                request_key=self._request_key,
                expected_amount_cents=self._amount_cents,
            )

    @rx.event
    def confirm(self):
        if not self.confirm_action:
            return  # a click queued behind the one that made the change and closed the dialog
        self.confirm_error, self.confirming = "", True
        yield
        try:
            result = self._change()
        except DomainError as exc:
            self._payment_failed(exc.message)
            return
        # A charge that needs 3-D Secure is authenticated here, in the page (Stripe.js).
        yield self._charged(result)

    def _finishes_without_intent(self) -> bool:
        # Confirming again under the same request key asks Stripe how the payment ended.
        return True

    def _finish_payment(self, payment_intent: str, declined: str) -> products.ProductResult:
        result = self._change()
        if result.status == "requires_action":
            raise DomainError(declined)
        return result

    def _payment_ended(self, result: products.ProductResult) -> None:
        with self._attempt():
            self._reload()
        if result.status == "failed":
            self._payment_failed(f"{result.message or 'The payment failed.'} Nothing changed.")
            return
        self._close_confirm()
        self.notice = result.notice


def _offer(offer: PlanOffer, product: ProductCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(offer.name, size="3", as_="h4"),
                rx.cond(offer.current, rx.badge("Your plan", color_scheme="green")),
                align="center",
                spacing="2",
            ),
            rx.text(offer.price, weight="bold"),
            rx.el.ul(
                rx.foreach(offer.features, lambda feature: rx.el.li(rx.text(feature, size="2"))),
                aria_label=offer.name + " features",
            ),
            rx.spacer(),
            rx.cond(
                ~product.has_it,
                rx.button(
                    "Sign up",
                    size="2",
                    on_click=ProductsState.ask_change(product.code, offer.code),
                    aria_label="Sign up for " + offer.name,
                ),
                rx.cond(
                    ~offer.current & ~product.core,
                    rx.button(
                        "Switch to " + offer.name,
                        size="2",
                        variant="soft",
                        on_click=ProductsState.ask_change(product.code, offer.code),
                    ),
                ),
            ),
            spacing="2",
            align="start",
            height="100%",
        ),
        data_offer=product.code + ":" + offer.code,
        variant=rx.cond(offer.current, "classic", "surface"),
    )


def _product(row: ProductCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(row.name, size="4", as_="h3"),
                rx.cond(row.has_it, rx.badge("Active", color_scheme="green", variant="soft")),
                align="center",
                spacing="2",
            ),
            rx.text(row.description, size="2", color_scheme="gray"),
            rx.cond(
                row.has_it & ~row.core,
                rx.button(
                    "Cancel " + row.name,
                    size="1",
                    variant="ghost",
                    color_scheme="red",
                    on_click=ProductsState.ask_change(row.code, products.CANCEL),
                    align_self="start",
                ),
            ),
            rx.grid(
                rx.foreach(row.plans, lambda offer: _offer(offer, row)),
                columns=rx.breakpoints(initial="1", sm="2", lg="3"),
                spacing="3",
                width="100%",
            ),
            spacing="3",
            align="stretch",
        ),
        data_product=row.code,
    )


@console_page(
    "/products", "Compare the pricing plans of our products and sign up for more.", on_load=[ProductsState.load]
)
def products_page() -> list[rx.Component]:
    state = ProductsState
    return [
        form_messages(state),
        rx.vstack(rx.foreach(state.catalogue, _product), spacing="4", align="stretch", id="product-catalogue"),
        change_confirmation(state, subscription.PAYMENT_METHODS_PATH),
    ]
