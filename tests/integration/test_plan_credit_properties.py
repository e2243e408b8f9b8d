"""Over any sequence of plan and seat changes, cards that pay or decline, invoices paid or left
open, periods that close and payments refunded, what plan changes credit to the balance (less
what refunds took back) never exceeds what the account paid and kept, to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.errors import DomainError
from app.models import LedgerEntry, Payment
from app.payments import gateway
from app.services import invoices, payment_methods, payments, refunds, subscription
from app.services.customers import stripe_customer_id
from tests.factories import owner_and_account
from tests.stripe_fixtures import save_card

pytestmark = pytest.mark.usefixtures("localstripe")

START = datetime(2026, 11, 20, 9, tzinfo=UTC)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("plan"), st.sampled_from(["basic", "pro", "business"])),
        st.tuples(st.just("seats"), st.integers(min_value=5, max_value=40)),
        # The default card from now on: one that pays, or one that is declined.
        st.tuples(st.just("card"), st.booleans()),
        # Time passes; a month that ends is closed, as the job does.
        st.tuples(st.just("days"), st.integers(min_value=1, max_value=25)),
        # The open invoices are paid with the default card.
        st.tuples(st.just("pay"), st.just(True)),
        # Stripe refunds the latest payment in full (as its charge.refunded event does).
        st.tuples(st.just("refund"), st.just(True)),
    ),
    min_size=1,
    max_size=14,
)


def _money(session: Session, account_id: int) -> tuple[int, int]:
    """What plan changes credited less what refunds took back, and what the account paid and kept."""
    credited = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id, col(LedgerEntry.source).in_(("plan_change", "refund"))
        )
    ).one()
    paid = session.exec(
        select(func.coalesce(func.sum(Payment.amount_cents - Payment.refunded_cents), 0)).where(
            Payment.account_id == account_id, col(Payment.status).in_(payments.SUCCEEDED)
        )
    ).one()
    return int(credited), int(paid)


def _use_card(session: Session, account_id: int, card_id: str) -> None:
    gateway.set_default_payment_method(stripe_customer_id(session, account_id), card_id)
    payment_methods.sync_payment_methods(session, account_id)
    session.commit()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
# Upgraded and charged on Nov 20, the December renewal left open, cancelled on Dec 5: December's
# unpaid days were credited.
@example(sequence=[("plan", "pro"), ("days", 15), ("plan", "basic")])
# Upgraded, cancelled (the rest of the month credited), then the upgrade's charge refunded.
@example(sequence=[("plan", "pro"), ("plan", "basic"), ("refund", True)])
@example(sequence=[("pay", True), ("plan", "business"), ("plan", "basic"), ("refund", True)])
def test_plan_changes_never_credit_more_than_was_paid(sqlite_engine, sequence):
    """Each example gets its own account, so the shared database needs no wiping between them."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        actor, account = owner_and_account(session, email=f"owner-{datetime.now(UTC).timestamp()}@example.com")
        declined = save_card(session, account, "pm_card_chargeCustomerFail")
        pays = save_card(session, account, "pm_card_visa")
        now = START
        for number, (kind, value) in enumerate(sequence):
            key = f"step-{number}"
            try:
                if kind == "plan":
                    subscription.change_plan(session, actor, plan_code=str(value), request_key=key, now=now)
                elif kind == "seats":
                    subscription.change_seats(session, actor, seats_text=str(value), request_key=key, now=now)
                elif kind == "card":
                    _use_card(session, account.id, pays if value else declined)
                elif kind == "days":
                    later = now + timedelta(days=int(value))
                    boundary = invoices.period_end_after(now)
                    while boundary <= later.date():
                        invoices.close_period(
                            session, account.id, boundary, now=datetime.combine(boundary, time(), tzinfo=UTC)
                        )
                        boundary = invoices.period_end_after(datetime.combine(boundary, time(), tzinfo=UTC))
                    now = later
                elif kind == "refund":
                    latest = session.exec(
                        select(Payment)
                        .where(Payment.account_id == account.id, Payment.status == "succeeded")
                        .order_by(col(Payment.id).desc())
                    ).first()
                    if latest is not None:
                        refunds.charge_refunded(
                            session, latest, charge_id=f"ch_{latest.public_id}", refunded_cents=latest.amount_cents
                        )
                else:
                    card = payment_methods.default_method(session, account.id)
                    for due in invoices.payments_due(session, actor, now=now):
                        invoices.pay_invoice(
                            session,
                            actor,
                            invoice_id=due.id,
                            payment_method_id=card.stripe_payment_method_id,
                            request_key=key,
                        )
                session.commit()
            except DomainError:
                session.rollback()
            credited, paid = _money(session, account.id)
            assert credited <= paid, (kind, value, now.date())
