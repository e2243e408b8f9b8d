"""Renewals are collected: the monthly close charges a card account's invoice off-session through
localstripe, retries a failure after 1, 3 and 5 days with an email each time, then steps the plan
down to Basic; a charge that needs 3-D Secure is cancelled and the customer asked to pay on the
Invoices page; invoice-priced accounts are never charged and are past due after 30 days. The
clock is driven as the period-close tests drive it. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.config import ConfigError, get_settings, load_settings
from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs import invoices as invoice_jobs
from app.jobs.queue import run_due_jobs
from app.models import Account, AuditEvent, Invoice, Job, OutboxEmail, Payment, PlanChange, utcnow
from app.payments import gateway
from app.services import audit, console, invoices, ledger, payments, subscription
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from tests.factories import make_account
from tests.stripe_fixtures import (
    payment_intents,
    raw_card,
    save_card,
    stripe_intent,
    webhook_reports_the_decline_first,
)

pytestmark = pytest.mark.usefixtures("localstripe")

NOV_1 = date(2026, 11, 1)
CLOSED_AT = datetime(2026, 11, 1, 1, tzinfo=UTC)
DECLINES_ON_CHARGE = "4000000000000341"
NEEDS_3DS = "4000002500003155"
PRO_FIVE_SEATS = 5 * 2_900


@pytest.fixture
def clock(monkeypatch) -> list[datetime]:
    """The time the invoicing jobs see, moved by the test."""
    now = [CLOSED_AT]
    monkeypatch.setattr(invoice_jobs, "utcnow", lambda: now[0])
    return now


@pytest.fixture
def pro(session, owner):
    """The owner's account on Pro with 5 seats, its renewal due at the November close."""
    actor, account = owner
    account.plan_code, account.seats_purchased = "pro", 5
    session.add(account)
    session.commit()
    return actor, account


def _close_and_run(session: Session, engine, clock: list[datetime], account_id: int) -> None:
    """The monthly job closes the period at the clock's time, and every job then due runs."""
    invoice_jobs.close_period(session, {"account_id": account_id, "period_end": NOV_1.isoformat()})
    _run(session, engine, clock)


def _run(session: Session, engine, clock: list[datetime]) -> None:
    session.commit()
    run_due_jobs(engine, now=lambda: clock[0])
    session.expire_all()


def _renewal(session: Session, account_id: int) -> Invoice:
    return session.exec(
        select(Invoice).where(Invoice.account_id == account_id, Invoice.source == "period_close").order_by(Invoice.id)
    ).all()[-1]


def _payments(session: Session, account_id: int) -> list[Payment]:
    return list(session.exec(select(Payment).where(Payment.account_id == account_id).order_by(Payment.id)))


def _emails(session: Session, account_id: int) -> list[OutboxEmail]:
    rows = session.exec(select(OutboxEmail).where(OutboxEmail.account_id == account_id).order_by(OutboxEmail.id))
    return [e for e in rows if e.attachment_name == ""]  # not the issued invoices with their PDF


def _intents(localstripe: str, session: Session, account_id: int) -> list[dict]:
    customer = stripe_customer_id(session, account_id)
    return [i for i in payment_intents(localstripe) if i["customer"] == customer]


def _pending_collections(session: Session) -> list[Job]:
    return list(session.exec(select(Job).where(Job.kind == "collect_invoice", Job.status == "pending")))


def _shown_past_due(session: Session, actor, account_id: int, now: datetime) -> bool:
    header = console.console_header(session, actor).past_due
    plans = subscription.overview(session, actor, now=now).status == "Past due"
    assert header == plans == invoices.past_due(session, account_id, now)
    return header


def test_the_renewal_is_charged_off_session_at_the_period_close_and_its_invoice_paid(
    session, engine, pro, clock, localstripe
):
    actor, account = pro
    save_card(session, account, "pm_card_visa")

    _close_and_run(session, engine, clock, account.id)

    invoice = _renewal(session, account.id)
    assert (invoice.status, invoice.total_cents, invoice.paid_at) == ("paid", PRO_FIVE_SEATS, CLOSED_AT)
    [payment] = _payments(session, account.id)
    assert (payment.method, payment.status, payment.amount_cents) == ("renewal", "succeeded", PRO_FIVE_SEATS)
    assert (payment.invoice_id, payment.idempotency_key) == (invoice.id, f"renewal:{invoice.public_id}:1")
    [intent] = _intents(localstripe, session, account.id)
    assert (intent["id"], intent["status"], intent["amount"]) == (
        payment.stripe_payment_intent_id,
        "succeeded",
        PRO_FIVE_SEATS,
    )
    assert intent["metadata"]["invoice_id"] == invoice.public_id
    # The job run again, and the close run again, charge nothing more.
    invoices.collect(session, invoice.account_id, invoice.id, 1, CLOSED_AT)
    _close_and_run(session, engine, clock, account.id)
    assert len(_intents(localstripe, session, account.id)) == 1 and len(_payments(session, account.id)) == 1
    assert not _shown_past_due(session, actor, account.id, CLOSED_AT)


def test_a_rerun_after_stripe_charged_but_the_answer_was_lost_charges_once(session, engine, pro, clock, localstripe):
    _, account = pro
    card = save_card(session, account, "pm_card_visa")
    invoice_jobs.close_period(session, {"account_id": account.id, "period_end": NOV_1.isoformat()})
    session.commit()
    invoice = _renewal(session, account.id)
    # The job's first run committed its Payment and Stripe charged, but the answer was lost.
    payment, _ = payments.open_payment(
        session,
        account_id=account.id,
        amount_cents=invoice.total_cents,
        method="renewal",
        idempotency_key=f"renewal:{invoice.public_id}:1",
        payment_method_id=card,
        invoice_id=invoice.id,
    )
    invoice.payment_id = payment.id
    session.add(invoice)
    session.commit()
    gateway.create_payment_intent(
        customer_id=stripe_customer_id(session, account.id),
        payment_method_id=card,
        amount_cents=payment.amount_cents,
        idempotency_key=payment.idempotency_key,
        off_session=True,
        metadata=payments.metadata(payment, "renewal", invoice_id=invoice.public_id),
    )

    _run(session, engine, clock)

    assert _renewal(session, account.id).status == "paid"
    assert [p.status for p in _payments(session, account.id)] == ["succeeded"]
    assert len(_intents(localstripe, session, account.id)) == 1


def test_a_failing_renewal_is_retried_after_1_3_and_5_days_emailed_each_time_then_steps_down_to_basic(
    session, engine, pro, clock, localstripe
):
    actor, account = pro
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    pay_link = f"{get_settings().public_url}/billing/invoices"

    _close_and_run(session, engine, clock, account.id)

    invoice = _renewal(session, account.id)
    assert (invoice.status, invoice.failed_collections) == ("open", 1)
    assert _shown_past_due(session, actor, account.id, clock[0])
    [email] = _emails(session, account.id)
    label = invoices.label(invoice, account)
    assert (email.to_address, email.subject) == ("owner@example.com", f"Payment of invoice {label} failed")
    assert pay_link in email.body_text and "Your card was declined." in email.body_text
    for failures, days in ((1, 1), (2, 3), (3, 5)):
        [retry] = _pending_collections(session)
        assert retry.run_at == CLOSED_AT + timedelta(days=days)
        assert _renewal(session, account.id).next_collection_at == retry.run_at
        clock[0] = CLOSED_AT + timedelta(days=days) - timedelta(minutes=1)
        _run(session, engine, clock)
        assert len(_payments(session, account.id)) == failures  # not before its day
        clock[0] = CLOSED_AT + timedelta(days=days)
        _run(session, engine, clock)
        assert len(_payments(session, account.id)) == failures + 1
        assert len(_emails(session, account.id)) == failures + 1

    payments_made = _payments(session, account.id)
    assert [(p.method, p.status, p.amount_cents) for p in payments_made] == [("renewal", "failed", PRO_FIVE_SEATS)] * 4
    assert [p.idempotency_key for p in payments_made] == [f"renewal:{invoice.public_id}:{n}" for n in (1, 2, 3, 4)]
    intents = _intents(localstripe, session, account.id)
    assert len(intents) == 4 and not [i for i in intents if i["status"] == "succeeded"]
    assert _pending_collections(session) == []
    # After the last failure: Basic, as a downgrade on Nov 6 would (25 of 30 days unpaid, taken
    # off the renewal, which is reissued for the 5 days of Pro used; nothing credited).
    account = session.get(Account, account.id)
    assert (account.plan_code, account.seats_purchased) == ("basic", 0)
    [change] = session.exec(select(PlanChange).where(PlanChange.account_id == account.id)).all()
    assert (change.from_plan_code, change.to_plan_code, change.credited_cents) == ("pro", "basic", 0)
    assert change.invoice_cents == 12_083
    [entry] = session.exec(select(AuditEvent).where(AuditEvent.account_id == account.id)).all()
    assert (entry.actor_name, entry.action) == (audit.BILLING, "plan.change")
    assert entry.summary.startswith(
        f"Invoice {label} unpaid after 4 failed charges. Changed the plan from Pro to Basic"
    )
    assert session.get(Invoice, (invoice.account_id, invoice.id)).status == "void"
    reissued = _renewal(session, account.id)
    assert (reissued.status, reissued.total_cents, reissued.failed_collections) == (
        "open",
        PRO_FIVE_SEATS - 12_083,
        4,
    )
    assert ledger.balance_of(session, account.id) == 0
    assert _shown_past_due(session, actor, account.id, clock[0])
    last = _emails(session, account.id)[-1]
    assert "your plan moves to Basic" in last.body_text and pay_link in last.body_text
    # Nothing runs again: no more charges, no second step-down.
    clock[0] += timedelta(days=30)
    _run(session, engine, clock)
    assert len(_payments(session, account.id)) == 4
    assert len(session.exec(select(PlanChange)).all()) == 1


def test_paying_on_the_invoices_page_during_dunning_stops_the_retries(session, engine, pro, clock, localstripe):
    actor, account = pro
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    _close_and_run(session, engine, clock, account.id)
    invoice = _renewal(session, account.id)
    good = save_card(session, account, "pm_card_visa")

    result = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=good, request_key="pay-now"
    )
    session.commit()
    assert result.status == "succeeded"
    assert not _shown_past_due(session, actor, account.id, clock[0])
    clock[0] = CLOSED_AT + timedelta(days=10)
    _run(session, engine, clock)
    assert [p.method for p in _payments(session, account.id)] == ["renewal", "invoice"]
    assert session.get(Account, account.id).plan_code == "pro"


def test_a_retry_waits_for_a_payment_the_customer_started_and_cancels_it_once_abandoned(
    session, engine, pro, clock, localstripe
):
    actor, account = pro
    needs_3ds = save_card(session, account, raw_card(localstripe, NEEDS_3DS))
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))  # the default
    _close_and_run(session, engine, clock, account.id)
    invoice = _renewal(session, account.id)
    started = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=needs_3ds, request_key="on-page"
    )
    session.commit()
    assert started.status == "requires_action"

    # The retry's day: the customer may be authenticating right now, so nothing is charged.
    clock[0] = CLOSED_AT + timedelta(days=1)
    _run(session, engine, clock)
    assert [p.method for p in _payments(session, account.id)] == ["renewal", "invoice"]
    [recheck] = _pending_collections(session)
    assert recheck.run_at == clock[0] + timedelta(hours=1)

    # An hour after the customer's payment started it counts as abandoned: cancelled at Stripe,
    # and the scheduled charge goes ahead.
    clock[0] = utcnow() + timedelta(hours=2)
    _run(session, engine, clock)
    on_page, retried = _payments(session, account.id)[1:]
    assert on_page.status == "canceled"
    assert stripe_intent(on_page.stripe_payment_intent_id)["status"] == "canceled"
    assert (retried.idempotency_key, retried.status) == (f"renewal:{invoice.public_id}:2", "failed")
    assert _renewal(session, account.id).failed_collections == 2


def test_a_failure_reported_by_both_the_job_and_the_webhook_is_counted_and_emailed_once(
    session, engine, pro, clock, localstripe, webhook_client, monkeypatch
):
    _, account = pro
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    webhook_reports_the_decline_first(monkeypatch, webhook_client, CLOSED_AT)
    _close_and_run(session, engine, clock, account.id)

    [payment] = _payments(session, account.id)
    assert payment.status == "failed" and payment.stripe_payment_intent_id
    assert _renewal(session, account.id).failed_collections == 1
    assert len(_emails(session, account.id)) == 1
    # One retry, a day after the webhook (which saw the failure first).
    [retry] = _pending_collections(session)
    assert json.loads(retry.payload) == {"account_id": account.id, "invoice_id": payment.invoice_id, "attempt": 2}


def test_a_plan_change_during_dunning_carries_the_collection_to_the_reissued_invoice(
    session, engine, owner, clock, localstripe
):
    actor, account = owner
    account.plan_code, account.seats_purchased = "business", 5
    session.add(account)
    session.commit()
    save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
    _close_and_run(session, engine, clock, account.id)
    first = _renewal(session, account.id)
    assert first.failed_collections == 1
    # The customer adds a card that works and moves down to Pro: the unpaid renewal is reissued for less.
    save_card(session, account, "pm_card_visa")
    subscription.change_plan(session, actor, plan_code="pro", request_key="down", now=CLOSED_AT + timedelta(hours=2))
    session.commit()
    reissued = _renewal(session, account.id)
    assert session.get(Invoice, (first.account_id, first.id)).status == "void"
    assert (reissued.status, reissued.failed_collections) == ("open", 1)
    assert reissued.total_cents < first.total_cents

    clock[0] = CLOSED_AT + timedelta(days=1)
    _run(session, engine, clock)

    reissued = session.get(Invoice, (reissued.account_id, reissued.id))
    assert reissued.status == "paid"
    assert [(p.idempotency_key, p.status, p.amount_cents) for p in _payments(session, account.id)] == [
        (f"renewal:{first.public_id}:1", "failed", first.total_cents),
        (f"renewal:{reissued.public_id}:2", "succeeded", reissued.total_cents),
    ]
    assert not invoices.past_due(session, account.id, clock[0]) and _pending_collections(session) == []


def test_an_off_session_charge_that_needs_3d_secure_is_cancelled_and_the_customer_asked_to_pay_on_invoices(
    session, engine, pro, clock, localstripe
):
    actor, account = pro
    save_card(session, account, raw_card(localstripe, NEEDS_3DS))

    _close_and_run(session, engine, clock, account.id)

    invoice = _renewal(session, account.id)
    [payment] = _payments(session, account.id)
    assert (payment.status, payment.failure_message) == ("canceled", payments.AUTHENTICATION_MESSAGE)
    [intent] = _intents(localstripe, session, account.id)
    assert (intent["id"], intent["status"]) == (payment.stripe_payment_intent_id, "canceled")
    assert (invoice.status, invoice.failed_collections) == ("open", 1)
    [email] = _emails(session, account.id)
    assert email.subject == f"Invoice {invoices.label(invoice, account)} needs you to pay"
    assert f"{get_settings().public_url}/billing/invoices" in email.body_text
    assert "nothing was taken" in email.body_text
    assert _shown_past_due(session, actor, account.id, clock[0])
    assert [job.run_at for job in _pending_collections(session)] == [CLOSED_AT + timedelta(days=1)]


def test_an_invoice_priced_account_is_not_charged_and_is_past_due_after_30_days(session, engine, clock, localstripe):
    account = make_account(session)
    account.plan_code = "custom"
    session.add(account)
    billing_settings(session, account.id).invoice_priced = True
    ledger.set_overage_credit_line(session, account.id, 500_000)
    ledger.debit(
        session,
        account_id=account.id,
        amount_cents=12_345,
        description="API usage",
        idempotency_key="u",
        now=CLOSED_AT - timedelta(days=20),
    )
    session.commit()

    _close_and_run(session, engine, clock, account.id)

    invoice = _renewal(session, account.id)
    assert (invoice.status, invoice.total_cents, invoice.due_at) == ("open", 12_345, CLOSED_AT + timedelta(days=30))
    assert _payments(session, account.id) == [] and _pending_collections(session) == []
    assert not invoices.past_due(session, account.id, CLOSED_AT + timedelta(days=30))
    assert invoices.past_due(session, account.id, CLOSED_AT + timedelta(days=31))


@pytest.mark.parametrize(("value", "days"), [("", (1, 3, 5)), ("2,7", (2, 7)), (" 1, 2 ,4", (1, 2, 4))])
def test_the_retry_schedule_is_configurable(monkeypatch, value, days):
    monkeypatch.setenv("DUNNING_RETRY_DAYS", value)
    assert load_settings().dunning_retry_days == days


@pytest.mark.parametrize("value", ["3,1", "0,2", "1,1", "soon", "1;3"])
def test_a_malformed_retry_schedule_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("DUNNING_RETRY_DAYS", value)
    with pytest.raises(ConfigError, match="DUNNING_RETRY_DAYS"):
        load_settings()


def test_with_final_action_none_the_plan_stays_and_the_invoice_stays_due(
    session, engine, pro, clock, localstripe, monkeypatch
):
    monkeypatch.setenv("DUNNING_RETRY_DAYS", "2")
    monkeypatch.setenv("DUNNING_FINAL_ACTION", "none")
    get_settings.cache_clear()
    try:
        actor, account = pro
        save_card(session, account, raw_card(localstripe, DECLINES_ON_CHARGE))
        _close_and_run(session, engine, clock, account.id)
        clock[0] = CLOSED_AT + timedelta(days=2)
        _run(session, engine, clock)
        assert [p.status for p in _payments(session, account.id)] == ["failed", "failed"]
        assert session.get(Account, account.id).plan_code == "pro"
        assert (_renewal(session, account.id).status, _renewal(session, account.id).failed_collections) == ("open", 2)
        assert "the invoice stays due until it is paid" in _emails(session, account.id)[-1].body_text
        assert _shown_past_due(session, actor, account.id, clock[0])
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
