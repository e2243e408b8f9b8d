"""Plans and seats against a real localstripe process, on SQLite and PostgreSQL: upgrades are
charged once, downgrades and removed seats credited once, and every refusal changes nothing.

All changes are made on Nov 22, 2026 (UTC): 9 of November's 30 days are left."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlmodel import Session, select

from app.errors import Conflict, PermissionDenied, ValidationFailed
from app.models import Account, CreditBalance, Invoice, InvoiceLine, LedgerEntry, Payment, PlanChange
from app.payments import gateway
from app.services import info, invoices, ledger, payment_methods, roles, stripe_events, subscription, team
from app.services.accounts import builtin_role
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from app.services.permissions import Permission
from tests.factories import actor_for, make_user, owner_and_account, signed_in_actor
from tests.stripe_fixtures import intent_for, payment_intents, raw_card, save_card, stripe_intent

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


def _on_plan(session, account: Account, plan_code: str, seats_purchased: int = 0) -> None:
    account.plan_code, account.seats_purchased = plan_code, seats_purchased
    session.add(account)
    session.commit()


def _renewed(session, account: Account, period_start: date = date(2026, 11, 1), *, paid: bool = True) -> Invoice:
    """The period close that renewed the plan for the period starting `period_start`; its invoice
    paid (as by bank transfer) unless `paid` is false."""
    invoice = invoices.close_period(
        session, account.id, period_start, now=datetime.combine(period_start, datetime.min.time(), tzinfo=UTC)
    )
    if paid:
        invoices.mark_paid(session, invoice, None)
    session.commit()
    return invoice


def _add_users(session, account: Account, count: int) -> None:
    for number in range(count):
        make_user(session, account, f"user{number}@example.com", "member")
    session.commit()


def _snapshot(session, account_id: int) -> tuple:
    """What a refused change must leave as it was."""
    session.expire_all()
    account = session.get(Account, account_id)
    return (
        account.plan_code,
        account.seats_purchased,
        ledger.balance_of(session, account_id),
        len(session.exec(select(PlanChange)).all()),
        len(session.exec(select(Payment)).all()),
        len(session.exec(select(Invoice)).all()),
    )


def _stripe_intents(localstripe_url: str, customer_id: str) -> list[dict]:
    """The customer's PaymentIntents as Stripe has them."""
    return [intent for intent in payment_intents(localstripe_url) if intent.get("customer") == customer_id]


# Upgrades


def test_an_upgrade_charges_the_prorated_difference_once_and_switches_at_once(session, owner, localstripe):
    actor, account = owner
    save_card(session, account, "pm_card_visa")

    quote = subscription.quote_plan(session, actor, "pro", now=NOW)
    assert (quote.title, quote.amount_cents, quote.from_seats, quote.to_seats) == ("Upgrade to Pro", 4_350, 3, 5)
    assert quote.lines == (
        "Now: Basic, 3 seats, free.",
        "After the change: Pro, $29.00 × 5 seats = $145.00 per month.",
        "Charged now to Visa •••• 4242: $43.50, the difference for the 9 of 30 days left in this billing period.",
        "From Dec 1, 2026, you pay $145.00 per month.",
    )
    result = subscription.change_plan(
        session, actor, plan_code="pro", request_key="up-1", expected_amount_cents=4_350, now=NOW
    )
    session.commit()
    assert (result.status, result.amount_cents, result.plan_name, result.seats) == ("applied", 4_350, "Pro", 5)

    session.expire_all()
    account = session.get(Account, account.id)
    assert (account.plan_code, account.seats_purchased, account.plan_status) == ("pro", 5, "active")
    assert (account.plan_period_start, account.plan_renews_at) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert session.get(CreditBalance, account.id).overage_credit_line_cents == 5_000
    payment = session.exec(select(Payment)).one()
    assert (payment.method, payment.status, payment.amount_cents) == ("plan", "succeeded", 4_350)
    invoice = session.exec(select(Invoice)).one()
    assert (invoice.source, invoice.status, invoice.total_cents, invoice.payment_id) == (
        "plan_change",
        "paid",
        4_350,
        payment.id,
    )
    assert session.exec(select(InvoiceLine.amount_cents).where(InvoiceLine.invoice_id == invoice.id)).all() == [4_350]
    # An upgrade moves no usage credits.
    assert ledger.balance_of(session, account.id) == 0

    # The confirmation sent again (a double click, a reconnect) charges nothing more.
    again = subscription.change_plan(session, actor, plan_code="pro", request_key="up-1", now=NOW)
    session.commit()
    assert again == result
    assert len(session.exec(select(Payment)).all()) == 1 and len(session.exec(select(Invoice)).all()) == 1
    customer = stripe_customer_id(session, account.id)
    assert [intent["amount"] for intent in _stripe_intents(localstripe, customer)] == [4_350]


def test_a_declined_card_leaves_the_plan_unchanged(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_chargeCustomerFail")

    result = subscription.change_plan(session, actor, plan_code="business", request_key="up-2", now=NOW)
    session.commit()
    assert (result.status, result.message) == ("failed", "Your card was declined.")
    session.expire_all()
    assert (session.get(Account, account.id).plan_code, session.get(Account, account.id).seats_purchased) == (
        "basic",
        0,
    )
    assert session.exec(select(Invoice)).all() == []
    assert session.exec(select(PlanChange.status)).all() == ["failed"]
    assert session.exec(select(Payment.status)).all() == ["failed"]
    # The same confirmation again reports the failure and charges nothing.
    assert subscription.change_plan(session, actor, plan_code="business", request_key="up-2", now=NOW) == result
    assert len(session.exec(select(Payment)).all()) == 1


def test_an_upgrade_between_paid_plans_keeps_the_seats_and_bills_the_difference(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=12)

    quote = subscription.quote_plan(session, actor, "business", now=NOW)
    assert (quote.from_seats, quote.to_seats) == (12, 12)
    # (12 × $99 − 12 × $29) × 9/30 = $252.00
    assert quote.amount_cents == 25_200
    assert (
        subscription.change_plan(session, actor, plan_code="business", request_key="up-3", now=NOW).status == "applied"
    )
    session.commit()
    invoice = session.exec(select(Invoice)).one()
    assert invoice.total_cents == 25_200 and invoice.status == "paid"


def test_3d_secure_is_finished_by_confirming_again_and_the_webhook_applies_nothing_more(session, owner, localstripe):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, "4000002500003155"))

    first = subscription.change_plan(session, actor, plan_code="pro", request_key="up-4", now=NOW)
    session.commit()
    assert first.status == "requires_action" and first.client_secret.startswith(first.payment_intent_id)
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "basic"

    # What localstripe's Stripe.js does when the payer clicks "Complete authentication".
    httpx.post(
        f"{localstripe}/v1/payment_intents/{first.payment_intent_id}/_authenticate",
        data={"client_secret": first.client_secret, "success": "true"},
        auth=("sk_test_localstripe", ""),
    ).raise_for_status()
    finished = subscription.change_plan(session, actor, plan_code="pro", request_key="up-4", now=NOW)
    session.commit()
    assert (finished.status, finished.client_secret) == ("applied", "")
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "pro"

    intent = stripe_intent(first.payment_intent_id)
    stripe_events.record_and_handle(
        session, {"id": "evt_plan_1", "type": "payment_intent.succeeded", "data": {"object": intent}}
    )
    session.commit()
    assert len(session.exec(select(Invoice)).all()) == 1


def test_a_charge_whose_answer_was_lost_is_applied_by_the_webhook_while_the_account_is_unchanged(
    session, owner, monkeypatch, caplog
):
    actor, account = owner
    save_card(session, account, "pm_card_visa")

    def lost(**_kwargs):
        raise gateway.PaymentProviderError("Stripe did not answer.")

    with monkeypatch.context() as patched:
        patched.setattr(gateway, "create_payment_intent", lost)
        first = subscription.change_plan(session, actor, plan_code="pro", request_key="lost-1", now=NOW)
        second = subscription.change_plan(session, actor, plan_code="business", request_key="lost-2", now=NOW)
    session.commit()
    assert (first.status, second.status) == ("failed", "failed")
    payments = session.exec(select(Payment).order_by(Payment.id)).all()

    def succeeded(payment: Payment, event_id: str) -> None:
        intent = intent_for(session, payment, intent_id=f"pi_{event_id}")
        # Asked again, Stripe confirms the charge the failed payment did not see.
        confirmed = gateway.Intent(
            id=intent["id"], status="succeeded", amount_cents=payment.amount_cents, customer=intent["customer"]
        )
        monkeypatch.setattr(gateway, "retrieve_payment_intent", lambda _id: confirmed)
        stripe_events.record_and_handle(
            session, {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": intent}}
        )
        session.commit()

    # Stripe had charged after all: the account is still on Basic, so the upgrade applies.
    succeeded(payments[0], "evt_lost_1")
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "pro"
    # The other was made from Basic too, which the account no longer is: logged to be refunded.
    succeeded(payments[1], "evt_lost_2")
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "pro"
    assert "refund it" in caplog.text
    assert session.exec(select(PlanChange.status).order_by(PlanChange.id)).all() == ["applied", "failed"]


def test_a_change_left_waiting_for_3d_secure_is_cancelled_when_another_starts(session, owner, localstripe):
    actor, account = owner
    save_card(session, account, raw_card(localstripe, "4000002500003155"))
    waiting = subscription.change_plan(session, actor, plan_code="business", request_key="up-5", now=NOW)
    session.commit()
    assert waiting.status == "requires_action"

    # The payer walked away and chose a smaller upgrade instead.
    second = subscription.change_plan(session, actor, plan_code="pro", request_key="up-6", now=NOW)
    session.commit()
    assert second.status == "requires_action"
    assert gateway.retrieve_payment_intent(waiting.payment_intent_id).status == "canceled"
    assert session.exec(select(PlanChange.status).order_by(PlanChange.id)).all() == ["failed", "pending"]

    # Its late success through the webhook applies the one change the payer completed.
    intent = stripe_intent(second.payment_intent_id)
    for event_id in ("evt_a", "evt_b"):
        stripe_events.record_and_handle(
            session, {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": intent}}
        )
    session.commit()
    session.expire_all()
    assert session.get(Account, account.id).plan_code == "pro"
    assert [i.total_cents for i in session.exec(select(Invoice))] == [4_350]


# Downgrades and cancelling


def test_a_downgrade_credits_the_prorated_difference_once(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "business")
    renewal = _renewed(session, account)

    quote = subscription.quote_plan(session, actor, "pro", now=NOW)
    assert (quote.title, quote.to_seats, quote.amount_cents) == ("Downgrade to Pro", 10, -21_000)
    assert quote.lines[2] == (
        "Credited to your balance now: $210.00, the difference for the 9 of 30 days left in this billing period."
    )
    result = subscription.change_plan(session, actor, plan_code="pro", request_key="down-1", now=NOW)
    session.commit()
    assert (result.status, result.amount_cents) == ("applied", -21_000)
    assert subscription.change_plan(session, actor, plan_code="pro", request_key="down-1", now=NOW) == result
    session.commit()

    [entry] = session.exec(select(LedgerEntry)).all()
    assert (entry.source, entry.amount_cents) == ("plan_change", 21_000)
    assert entry.description == "Downgrade from Business to Pro: 9 of 30 days left in the billing period"
    assert ledger.balance_of(session, account.id) == 21_000 == ledger.ledger_sum(session, account.id)
    session.expire_all()
    assert (session.get(Account, account.id).plan_code, session.get(Account, account.id).seats_purchased) == ("pro", 10)
    assert session.exec(select(Payment)).all() == [] and session.exec(select(Invoice)).all() == [renewal]


def test_cancelling_is_a_downgrade_to_basic_and_needs_no_card(session, owner):
    actor, account = owner
    _on_plan(session, account, "pro")
    _renewed(session, account)
    ledger.set_overage_credit_line(session, account.id, 5_000)
    session.commit()

    result = subscription.change_plan(session, actor, plan_code="basic", request_key="cancel", now=NOW)
    session.commit()
    assert (result.status, result.amount_cents, result.seats) == ("applied", -4_350, 3)
    session.expire_all()
    account = session.get(Account, account.id)
    assert (account.plan_code, account.seats_purchased, account.plan_renews_at) == ("basic", 0, None)
    assert session.get(CreditBalance, account.id).overage_credit_line_cents == 0
    assert ledger.balance_of(session, account.id) == 4_350
    assert subscription.overview(session, actor, now=NOW).renews_on == ""


def test_cancelling_needs_no_more_users_than_basic_has_seats(session, owner):
    actor, account = owner
    _on_plan(session, account, "pro")
    _add_users(session, account, 3)
    before = _snapshot(session, account.id)
    with pytest.raises(Conflict, match="4 seats are in use, but Basic includes 3"):
        subscription.change_plan(session, actor, plan_code="basic", request_key="cancel-2", now=NOW)
    session.rollback()
    assert _snapshot(session, account.id) == before


# Seats


def test_adding_seats_is_charged_prorated_and_invitations_follow(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro")
    _add_users(session, account, 4)
    member_role = builtin_role(session, "member").id

    def invite(email: str):
        return team.invite(session, actor, email=email, full_name="New User", role_id=member_role, base_url="http://x")

    with pytest.raises(Conflict, match="All 5 seats"):
        invite("sixth@example.com")
    session.rollback()

    quote = subscription.quote_seats(session, actor, "7", now=NOW)
    assert (quote.title, quote.amount_cents) == ("Change seats", 1_740)  # 2 × $29 × 9/30
    result = subscription.change_seats(session, actor, seats_text="7", request_key="seats-1", now=NOW)
    session.commit()
    assert (result.status, result.seats) == ("applied", 7)
    assert session.exec(select(Invoice.total_cents)).all() == [1_740]
    invite("sixth@example.com")
    session.commit()
    assert team.seats(session, actor) == team.Seats(used=6, limit=7)
    assert next(limit for limit in info.account_info(session, actor, now=NOW).limits if limit.key == "seats").limit == 7
    overview = subscription.overview(session, actor, now=NOW)
    assert (overview.seats, overview.seats_used, overview.monthly_text) == (
        7,
        6,
        "$29.00 × 7 seats = $203.00 per month",
    )


def test_removing_seats_credits_the_unused_days(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=8)
    _renewed(session, account)

    quote = subscription.quote_seats(session, actor, "6", now=NOW)
    assert quote.amount_cents == -1_740
    assert quote.lines[2].startswith("Credited to your balance now: $17.40")
    subscription.change_seats(session, actor, seats_text="6", request_key="seats-2", now=NOW)
    session.commit()
    [entry] = session.exec(select(LedgerEntry)).all()
    assert (entry.source, entry.amount_cents) == ("plan_change", 1_740)
    assert entry.description == "Seats reduced from 8 to 6 on Pro: 9 of 30 days left in the billing period"
    session.expire_all()
    assert session.get(Account, account.id).seats_purchased == 6


def test_seats_added_one_at_a_time_and_removed_at_once_return_exactly_what_was_charged(session, owner):
    """On Dec 4, 2026 (28 of 31 days left) one Pro seat is $26.193… for the rest of the month:
    each seat added was charged $26.19, while removing 20 at once credited $523.87, 7 ¢ more than
    was charged, again on every round (35 ¢ for 100 seats). The period's running total is
    rounded, not each change."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=6)
    dec_4 = datetime(2026, 12, 4, 10, tzinfo=UTC)

    for round_number in range(2):
        charged = 0
        for seats in range(7, 27):
            result = subscription.change_seats(
                session, actor, seats_text=str(seats), request_key=f"add-{round_number}-{seats}", now=dec_4
            )
            session.commit()
            assert result.status == "applied"
            charged += result.amount_cents
        assert charged == 52_387
        removed = subscription.change_seats(
            session, actor, seats_text="6", request_key=f"remove-{round_number}", now=dec_4
        )
        session.commit()
        assert removed.amount_cents == -charged
    paid = sum(session.exec(select(Payment.amount_cents).where(Payment.status == "succeeded")).all())
    assert paid == ledger.balance_of(session, account.id) == 2 * 52_387
    # Each charge's invoice bills what was charged.
    billed = session.exec(select(Invoice.total_cents).where(Invoice.source == "plan_change")).all()
    assert len(billed) == 40 and sum(billed) == paid


# Only what was paid is credited


DEC_1 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _invoice_lines(session, invoice: Invoice) -> list[tuple[str, int]]:
    return [
        (line.description, line.amount_cents)
        for line in session.exec(
            select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.position)
        )
    ]


def test_a_downgrade_in_an_unpaid_period_credits_nothing_and_takes_it_off_the_open_invoice(session, owner):
    """The renewal of 7 Pro seats ($203) is open; cancelling on Dec 1 credited $203 of spendable
    credits and left the invoice to pay. Now the invoice is voided and issued again without it."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=7)
    renewal = _renewed(session, account, date(2026, 12, 1), paid=False)
    assert (renewal.status, renewal.total_cents, renewal.plan_cents) == ("open", 20_300, 20_300)

    quote = subscription.quote_plan(session, actor, "basic", now=DEC_1)
    assert quote.amount_cents == -20_300
    label = invoices.label(renewal, account)
    assert quote.lines[2:4] == (
        "The difference for the 31 of 31 days left in this billing period is $203.00. "
        "Only time you have paid for is credited.",
        f"Taken off your unpaid invoice {label}: $203.00. It is voided and issued again for that much less.",
    )
    result = subscription.change_plan(
        session, actor, plan_code="basic", request_key="unpaid-1", expected_amount_cents=-20_300, now=DEC_1
    )
    session.commit()
    assert (result.status, result.credited_cents, result.invoice_cents) == ("applied", 0, 20_300)
    assert ledger.balance_of(session, account.id) == 0
    assert session.exec(select(LedgerEntry)).all() == []

    session.expire_all()
    assert session.get(Invoice, (renewal.account_id, renewal.id)).status == "void"
    reissued = session.exec(select(Invoice).where(Invoice.id != renewal.id)).one()
    assert (reissued.source, reissued.status, reissued.total_cents, reissued.plan_cents) == (
        "period_close",
        "paid",
        0,
        0,
    )
    assert _invoice_lines(session, reissued) == [
        ("Pro plan seats, Dec 1 – Dec 31, 2026", 20_300),
        ("Downgrade from Pro to Basic: 31 of 31 days left in the billing period", -20_300),
    ]
    assert invoices.payments_due(session, actor, now=DEC_1) == []
    # Confirming again changes nothing more.
    assert subscription.change_plan(session, actor, plan_code="basic", request_key="unpaid-1", now=DEC_1) == result
    session.commit()
    assert len(session.exec(select(Invoice)).all()) == 2


def test_seats_removed_later_in_an_unpaid_period_leave_the_days_used_on_the_reissued_invoice(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=7)
    renewal = _renewed(session, account, date(2026, 12, 1), paid=False)
    dec_10 = datetime(2026, 12, 10, 9, tzinfo=UTC)

    # 2 seats × $29 × 22/31 = $41.16, off the invoice; nothing to the balance.
    result = subscription.change_seats(session, actor, seats_text="5", request_key="unpaid-2", now=dec_10)
    session.commit()
    assert (result.amount_cents, result.credited_cents, result.invoice_cents) == (-4_116, 0, 4_116)
    assert ledger.balance_of(session, account.id) == 0
    session.expire_all()
    assert session.get(Invoice, (renewal.account_id, renewal.id)).status == "void"
    [due] = invoices.payments_due(session, actor, now=dec_10)
    assert due.amount == "$161.84"
    reissued = session.exec(select(Invoice).where(Invoice.public_id == due.id)).one()
    assert reissued.plan_cents == 16_184 and reissued.memo.startswith(
        f"Replaces invoice {invoices.label(renewal, account)}"
    )

    # Paid, it is what the period's seats are credited from.
    paid = invoices.pay_invoice(
        session, actor, invoice_id=due.id, payment_method_id=_default_card(session, account), request_key="pay-1"
    )
    session.commit()
    assert paid.status == "succeeded"
    result = subscription.change_seats(session, actor, seats_text="6", request_key="unpaid-3", now=dec_10)
    session.commit()
    back = subscription.change_seats(session, actor, seats_text="5", request_key="unpaid-4", now=dec_10)
    session.commit()
    assert (back.amount_cents, back.credited_cents) == (-result.amount_cents, result.amount_cents)


def test_a_credit_beyond_an_unpaid_renewal_comes_from_what_the_period_was_charged(session, owner):
    """Pro's renewal ($145) is open; an upgrade to Business (10 seats) is charged $845.00 on Dec 1;
    cancelling the same day gives the $845.00 back to the balance and takes $145.00 off the invoice."""
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=5)
    renewal = _renewed(session, account, date(2026, 12, 1), paid=False)

    up = subscription.change_plan(session, actor, plan_code="business", request_key="mix-1", now=DEC_1)
    session.commit()
    assert (up.status, up.amount_cents) == ("applied", 84_500)
    down = subscription.change_plan(session, actor, plan_code="basic", request_key="mix-2", now=DEC_1)
    session.commit()
    assert (down.amount_cents, down.credited_cents, down.invoice_cents) == (-99_000, 84_500, 14_500)
    assert ledger.balance_of(session, account.id) == 84_500
    session.expire_all()
    assert session.get(Invoice, (renewal.account_id, renewal.id)).status == "void"
    assert invoices.payments_due(session, actor, now=DEC_1) == []


def test_a_paid_renewal_is_credited_in_full_and_once(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=7)
    renewal = _renewed(session, account, date(2026, 12, 1), paid=False)
    paid = invoices.pay_invoice(
        session,
        actor,
        invoice_id=renewal.public_id,
        payment_method_id=_default_card(session, account),
        request_key="pay-2",
    )
    session.commit()
    assert paid.status == "succeeded"

    down = subscription.change_plan(session, actor, plan_code="basic", request_key="paid-1", now=DEC_1)
    session.commit()
    assert (down.amount_cents, down.credited_cents, down.invoice_cents) == (-20_300, 20_300, 0)
    assert down.settlement == "$203.00 was credited to your balance; it is listed in Balance History."
    # Back on Pro and down again: only what the second upgrade was charged comes back.
    up = subscription.change_plan(session, actor, plan_code="pro", request_key="paid-2", now=DEC_1)
    session.commit()
    again = subscription.change_plan(session, actor, plan_code="basic", request_key="paid-3", now=DEC_1)
    session.commit()
    assert up.amount_cents == 14_500 and again.credited_cents == 14_500
    assert ledger.balance_of(session, account.id) == 20_300 + 14_500
    session.expire_all()
    assert session.get(Invoice, (renewal.account_id, renewal.id)).status == "paid"


def test_a_refunded_charge_is_not_credited_back_again(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    up = subscription.change_plan(session, actor, plan_code="pro", request_key="refund-1", now=NOW)
    session.commit()
    # Refunded at Stripe, as the charge.refunded webhook records it.
    payment = session.exec(select(Payment)).one()
    payment.status, payment.refunded_cents = "refunded", up.amount_cents
    session.add(payment)
    session.commit()

    down = subscription.change_plan(session, actor, plan_code="basic", request_key="refund-2", now=NOW)
    session.commit()
    assert (down.amount_cents, down.credited_cents, down.invoice_cents) == (-4_350, 0, 0)
    assert ledger.balance_of(session, account.id) == 0


def _default_card(session, account: Account) -> str:
    return payment_methods.default_method(session, account.id).stripe_payment_method_id


@pytest.mark.parametrize(
    ("seats", "message"),
    [
        ("5", "6 seats are in use. Remove users or revoke invitations on the Team page to go below that."),
        ("4", "Your Pro plan includes 5 seats; you cannot have fewer."),
        ("8", "You already have 8 seats."),
        ("abc", "Enter a whole number of seats."),
        ("-1", "Enter a whole number of seats."),
        ("0", "Enter a number of seats from 1 to 1,000."),
        ("1001", "Enter a number of seats from 1 to 1,000."),
    ],
)
def test_seats_below_those_in_use_or_included_are_refused(session, owner, seats, message):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=8)
    _add_users(session, account, 5)
    before = _snapshot(session, account.id)
    with pytest.raises(ValidationFailed) as refused:
        subscription.change_seats(session, actor, seats_text=seats, request_key="seats-3", now=NOW)
    assert (refused.value.field, refused.value.message) == ("seats", message)
    session.rollback()
    assert _snapshot(session, account.id) == before


def test_basic_seats_cannot_be_bought(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    with pytest.raises(Conflict, match="Basic includes 3 seats. Upgrade to a paid plan to add seats."):
        subscription.quote_seats(session, actor, "4", now=NOW)
    assert not subscription.overview(session, actor, now=NOW).can_change_seats


# Refusals


def test_a_paid_plan_without_a_card_sends_the_user_to_payment_methods(session, owner):
    actor, account = owner
    before = _snapshot(session, account.id)
    for call in (
        lambda: subscription.quote_plan(session, actor, "pro", now=NOW),
        lambda: subscription.change_plan(session, actor, plan_code="business", request_key="nc", now=NOW),
    ):
        with pytest.raises(subscription.CardRequired) as refused:
            call()
        assert refused.value.message == (
            "A paid plan needs a card on file. Add a card on the Payment Methods page, then come back here."
        )
        session.rollback()
    assert _snapshot(session, account.id) == before
    assert subscription.overview(session, actor, now=NOW).card == ""


def test_an_amount_other_than_the_one_confirmed_changes_nothing(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    before = _snapshot(session, account.id)
    with pytest.raises(subscription.QuoteChanged):
        subscription.change_plan(
            session, actor, plan_code="pro", request_key="stale", expected_amount_cents=4_833, now=NOW
        )
    session.rollback()
    assert _snapshot(session, account.id) == before


def test_roles_without_plan_manage_are_refused(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    everything_but_plans = [
        p.value
        for p in Permission
        if p not in (Permission.PLAN_MANAGE, Permission.ACCOUNT_RENAME, Permission.AUDIT_VIEW)
    ]
    role = roles.create_role(session, actor, name="Admin without plans", permissions=everything_but_plans)
    user = make_user(session, account, "ops@example.com", "member")
    user.role_id = role.id
    session.add(user)
    session.commit()
    custom = signed_in_actor(session, "ops@example.com")
    assert custom.can(Permission.BILLING_MANAGE) and not custom.can(Permission.PLAN_MANAGE)
    admin = actor_for(make_user(session, account, "admin@example.com", "admin"), "admin")
    session.commit()
    before = _snapshot(session, account.id)
    for who in (member, custom):
        for call in (
            lambda who=who: subscription.overview(session, who),
            lambda who=who: subscription.quote_plan(session, who, "pro"),
            lambda who=who: subscription.quote_seats(session, who, "6"),
            lambda who=who: subscription.change_plan(session, who, plan_code="pro", request_key="p"),
            lambda who=who: subscription.change_seats(session, who, seats_text="6", request_key="p"),
        ):
            with pytest.raises(PermissionDenied):
                call()
    assert _snapshot(session, account.id) == before
    # The built-in Admin role holds plan.manage.
    assert subscription.change_plan(session, admin, plan_code="pro", request_key="a", now=NOW).status == "applied"
    session.commit()


def test_custom_priced_accounts_are_not_self_serve(session, owner):
    actor, account = owner
    _on_plan(session, account, "custom")
    billing_settings(session, account.id).invoice_priced = True
    session.commit()
    before = _snapshot(session, account.id)
    for call in (
        lambda: subscription.change_plan(session, actor, plan_code="pro", request_key="c1", now=NOW),
        lambda: subscription.change_seats(session, actor, seats_text="20", request_key="c2", now=NOW),
    ):
        with pytest.raises(Conflict, match="custom pricing and is billed by invoice"):
            call()
        session.rollback()
    assert _snapshot(session, account.id) == before

    overview = subscription.overview(session, actor, now=NOW)
    assert overview.custom_priced and overview.card == "" and not overview.can_change_seats
    assert overview.monthly_text == "As agreed in your contract, billed by invoice"
    assert {card.code: card.action for card in overview.plans} == {
        "basic": "none",
        "pro": "none",
        "business": "none",
        "custom": "current",
    }


def test_custom_pricing_is_arranged_with_sales(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    with pytest.raises(Conflict, match="Custom pricing is arranged with our sales team"):
        subscription.change_plan(session, actor, plan_code="custom", request_key="c3", now=NOW)
    with pytest.raises(ValidationFailed, match="Choose one of the plans shown"):
        subscription.quote_plan(session, actor, "platinum", now=NOW)
    with pytest.raises(Conflict, match="already on the Basic plan"):
        subscription.quote_plan(session, actor, "basic", now=NOW)


def test_the_overview_shows_plan_status_renewal_seats_and_what_each_plan_would_be(session, owner):
    actor, account = owner
    save_card(session, account, "pm_card_visa")
    _on_plan(session, account, "pro", seats_purchased=6)
    account.timezone = "America/Los_Angeles"
    session.add(account)
    session.commit()

    overview = subscription.overview(session, actor, now=NOW)
    assert (overview.plan_name, overview.status, overview.seats, overview.seats_used) == ("Pro", "Active", 6, 1)
    # The period ends at midnight UTC on Dec 1: still Nov 30 in Los Angeles.
    assert overview.renews_on == "Nov 30, 2026"
    assert overview.monthly_text == "$29.00 × 6 seats = $174.00 per month"
    assert overview.card == "Visa •••• 4242" and overview.can_change_seats
    cards = {card.code: card for card in overview.plans}
    assert {code: card.action for code, card in cards.items()} == {
        "basic": "downgrade",
        "pro": "current",
        "business": "upgrade",
        "custom": "contact",
    }
    assert (cards["pro"].price, cards["pro"].seats) == ("$29.00 per seat / month", "Includes 5 seats")
    assert cards["basic"].price == "Free"
    assert "API keys: 20" in cards["pro"].limits and "Spend management" in cards["pro"].features


def test_the_same_confirmation_sent_twice_at_once_charges_once_on_postgres(pg_engine, localstripe):
    with Session(pg_engine, expire_on_commit=False) as s:
        actor, account = owner_and_account(s)
        save_card(s, account, "pm_card_visa")
    barrier = threading.Barrier(2)
    results: list[subscription.ChangeResult] = []

    def confirm() -> None:
        with Session(pg_engine, expire_on_commit=False) as s:
            barrier.wait()
            results.append(subscription.change_plan(s, actor, plan_code="pro", request_key="double", now=NOW))
            s.commit()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The payment is committed before Stripe is called: the second may find it still on its way.
    assert sorted(r.status for r in results) in (["applied", "applied"], ["applied", "pending"])
    assert results[0].change_id == results[1].change_id
    with Session(pg_engine) as s:
        assert len(s.exec(select(Payment)).all()) == 1 and len(s.exec(select(Invoice)).all()) == 1
        customer = stripe_customer_id(s, account.id)
    assert len(_stripe_intents(localstripe, customer)) == 1
