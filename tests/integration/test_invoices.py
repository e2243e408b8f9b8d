"""Invoices: gapless numbering (concurrently, on PostgreSQL), receipts of purchases and recharges,
the period close (overage, renewals, idempotent), paying open invoices through localstripe,
credit notes, plan changes, the email with the PDF, and the download endpoint."""

from __future__ import annotations

import io
import threading
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlmodel import Session, select

from app.api import invoices as invoices_api
from app.config import get_settings
from app.demo import invoices as demo_invoices
from app.demo import usage_credits as demo_usage_credits
from app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs.queue import run_due_jobs
from app.models import Account, Invoice, InvoiceLine, Job, LedgerEntry, OutboxEmail, Payment, TaxRegistration, utcnow
from app.payments import gateway
from app.seed import seed_demo
from app.services import audit, auth, balance_history, invoices, ledger, overview, stripe_events
from app.services.customers import stripe_customer_id
from app.services.overview import billing_settings
from tests.factories import actor_for, grant, make_account, make_user, signed_in_token
from tests.stripe_fixtures import point_stripe_at, raw_card, save_card, stripe_intent

pytestmark = pytest.mark.usefixtures("localstripe")  # the owner's account is billed through (local) Stripe

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = date(2026, 11, 1)
DEC_1 = date(2026, 12, 1)


def _at(day: date, hours: int = 1) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hours)


def _grant(session, account_id, cents, when, key):
    grant(session, account_id, cents, key=key, now=when)


def _use(session, account_id, cents, when, key):
    ledger.debit(
        session, account_id=account_id, amount_cents=cents, description="API usage", idempotency_key=key, now=when
    )


def _lines(session, invoice):
    rows = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id).order_by(InvoiceLine.position))
    return [(line.description, line.amount_cents) for line in rows]


def _numbers(session, account_id):
    return list(session.exec(select(Invoice.number).where(Invoice.account_id == account_id).order_by(Invoice.number)))


def _issue(session, account_id, key, cents=1_000, status="paid"):
    return invoices.issue_invoice(
        session,
        account_id,
        source="purchase",
        lines=[invoices.LineItem("Usage credits", cents)],
        idempotency_key=key,
        status=status,
    )[0]


# Numbering


def test_numbers_start_at_one_per_account_and_a_repeated_key_issues_nothing(session):
    first, second = make_account(session, "First"), make_account(session, "Second")
    a1 = _issue(session, first.id, "a1")
    b1 = _issue(session, second.id, "b1")
    a2 = _issue(session, first.id, "a2")
    again = _issue(session, first.id, "a1")
    session.commit()
    assert (a1.number, a2.number, b1.number) == (1, 2, 1)
    assert again.id == a1.id and _numbers(session, first.id) == [1, 2]
    assert invoices.label(a2, first) == f"{first.public_id.removeprefix('acct_')}-0002"


def test_a_rolled_back_invoice_gives_its_number_back(session):
    account = make_account(session)
    _issue(session, account.id, "kept-1")
    session.commit()
    _issue(session, account.id, "lost")
    session.rollback()
    _issue(session, account.id, "kept-2")
    session.commit()
    assert _numbers(session, account.id) == [1, 2]


def test_concurrent_issuing_on_postgres_leaves_no_gap_and_no_duplicate(pg_engine):
    threads, per_thread = 12, 8
    with Session(pg_engine) as session:
        account_id = make_account(session).id
        session.commit()
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        start.wait()
        for i in range(per_thread):
            try:
                with Session(pg_engine) as session:
                    # Every thread also issues the shared keys: each of them must exist once.
                    _issue(session, account_id, f"t{number}-{i}")
                    _issue(session, account_id, f"shared-{i}")
                    if i % 3 == 0:
                        _issue(session, account_id, f"rolled-back-{number}-{i}")
                        session.rollback()
                    else:
                        session.commit()
            except BaseException as exc:
                failures.append(exc)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert failures == []
    with Session(pg_engine) as session:
        numbers = _numbers(session, account_id)
        keys = list(session.exec(select(Invoice.idempotency_key).where(Invoice.account_id == account_id)))
    committed = sum(1 for i in range(per_thread) if i % 3) * threads
    shared = len({i for i in range(per_thread) if i % 3})
    assert numbers == list(range(1, committed + shared + 1))
    assert len(keys) == len(set(keys)) == committed + shared
    assert not any(key.startswith("rolled-back") for key in keys)


# Receipts


def test_a_card_top_up_issues_one_paid_receipt(session, owner):
    from app.services import topups

    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    session.commit()
    [invoice] = session.exec(select(Invoice)).all()
    payment = session.exec(select(Payment)).one()
    assert (invoice.number, invoice.status, invoice.source, invoice.total_cents) == (1, "paid", "purchase", 2_500)
    assert invoice.payment_id == payment.id and invoice.paid_at is not None
    assert _lines(session, invoice) == [("Usage credits", 2_500)]
    assert [row.number for row in invoices.history(session, actor)] == [invoices.label(invoice, account)]
    assert invoices.payments_due(session, actor) == []


def test_a_declined_top_up_issues_nothing(session, owner):
    from app.services import topups

    actor, account = owner
    card = save_card(session, account, "pm_card_chargeCustomerFail")
    topups.start_card_topup(session, actor, amount_text="25", payment_method_id=card, request_key="r1")
    session.commit()
    assert session.exec(select(Invoice)).all() == []


def test_an_auto_recharge_that_succeeds_issues_a_receipt(session, engine, owner):
    from app.services import recharge

    actor, account = owner
    save_card(session, account, "pm_card_visa")
    assert recharge.save_settings(session, actor, True, "20", "50") is True
    session.commit()
    run_due_jobs(engine)
    session.expire_all()
    [invoice] = session.exec(select(Invoice)).all()
    assert (invoice.source, invoice.status, invoice.total_cents) == ("auto_recharge", "paid", 5_000)
    assert _lines(session, invoice) == [("Usage credits (auto recharge)", 5_000)]


# Period close


def test_period_close_bills_only_the_usage_below_zero_and_the_renewal(session):
    account = make_account(session)
    account.plan_code = "pro"
    session.add(account)
    ledger.set_overage_credit_line(session, account.id, 5_000)
    _grant(session, account.id, 1_000, OCT_1, "g")
    _use(session, account.id, 1_800, OCT_1 + timedelta(days=3), "u1")
    _use(session, account.id, 1_200, OCT_1 + timedelta(days=20), "u2")
    _use(session, account.id, 700, _at(NOV_1, 5), "after-the-period")
    session.commit()

    invoice = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    session.commit()
    assert (invoice.status, invoice.total_cents, invoice.overage_cents) == ("open", 2_000 + 14_500, 2_000)
    assert (invoice.period_start, invoice.period_end) == (date(2026, 10, 1), NOV_1)
    assert invoice.due_at == _at(NOV_1) + timedelta(days=14)
    assert _lines(session, invoice) == [
        ("Usage through Oct 31, 2026", 3_000),
        ("Paid from your usage credits", -1_000),
        ("Pro plan seats, Nov 1 – Nov 30, 2026", 14_500),
    ]
    billed = session.exec(select(LedgerEntry.idempotency_key).where(LedgerEntry.invoice_id == invoice.id)).all()
    assert sorted(billed) == ["u1", "u2"]
    # What is left to invoice is the usage after the period; the balance is untouched until paid.
    assert overview.overview(session, account.id).usage_this_period == 700
    assert ledger.balance_of(session, account.id) == -2_700 == ledger.ledger_sum(session, account.id)


def test_running_the_period_close_twice_bills_once(session):
    account = make_account(session)
    ledger.set_overage_credit_line(session, account.id, 5_000)
    _use(session, account.id, 1_500, OCT_1 + timedelta(days=2), "u1")
    session.commit()
    first = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    session.commit()
    _use(session, account.id, 400, OCT_1 + timedelta(days=9), "late-but-dated-october")
    second = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1, 9))
    session.commit()
    assert second.id == first.id and _numbers(session, account.id) == [1]
    assert (
        session.exec(
            select(LedgerEntry.invoice_id).where(LedgerEntry.idempotency_key == "late-but-dated-october")
        ).one()
        is None
    )
    assert len(session.exec(select(Job).where(Job.kind == "invoice_issued")).all()) == 1


def test_prepaid_usage_gets_a_paid_statement_and_a_free_plan_with_nothing_used_gets_none(session):
    prepaid, idle = make_account(session, "Prepaid"), make_account(session, "Idle")
    _grant(session, prepaid.id, 5_000, OCT_1, "g")
    _use(session, prepaid.id, 1_234, OCT_1 + timedelta(days=4), "u")
    session.commit()
    statement = invoices.close_period(session, prepaid.id, NOV_1, now=_at(NOV_1))
    assert invoices.close_period(session, idle.id, NOV_1, now=_at(NOV_1)) is None
    session.commit()
    assert (statement.status, statement.total_cents, statement.paid_at) == ("paid", 0, _at(NOV_1))
    assert _lines(session, statement) == [
        ("Usage through Oct 31, 2026", 1_234),
        ("Paid from your usage credits", -1_234),
    ]
    assert overview.overview(session, prepaid.id).usage_this_period == 0


def test_overage_is_never_billed_twice_and_paying_it_restores_the_balance(session):
    account = make_account(session)
    ledger.set_overage_credit_line(session, account.id, 10_000)
    _use(session, account.id, 2_000, OCT_1 + timedelta(days=1), "oct")
    session.commit()
    october = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    _use(session, account.id, 500, _at(NOV_1) + timedelta(days=3), "nov")
    session.commit()
    # October's invoice is still unpaid at the end of November: only November's usage is new.
    november = invoices.close_period(session, account.id, DEC_1, now=_at(DEC_1))
    session.commit()
    assert (october.overage_cents, november.overage_cents) == (2_000, 500)

    invoices.mark_paid(session, october, None, now=_at(DEC_1, 3))
    invoices.mark_paid(session, october, None)
    session.commit()
    applied = session.exec(select(LedgerEntry).where(LedgerEntry.source == "invoice_applied")).one()
    assert applied.amount_cents == 2_000 and invoices.label(october, account) in applied.description
    assert ledger.balance_of(session, account.id) == -500 == ledger.ledger_sum(session, account.id)
    # Paid in December: by the end of December nothing more is owed for October or November.
    assert invoices.close_period(session, account.id, date(2027, 1, 1), now=datetime(2027, 1, 1, 1, tzinfo=UTC)) is None


def test_the_renewal_bills_the_seats_bought_beyond_the_plans_own(session):
    account = make_account(session)
    account.plan_code, account.seats_purchased = "pro", 8
    session.add(account)
    session.commit()
    invoice = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    assert _lines(session, invoice) == [("Pro plan seats, Nov 1 – Nov 30, 2026", 8 * 2_900)]


def test_invoice_priced_accounts_get_net_30(session):
    account = make_account(session)
    account.plan_code = "custom"
    session.add(account)
    billing_settings(session, account.id).invoice_priced = True
    ledger.set_overage_credit_line(session, account.id, 500_000)
    _use(session, account.id, 12_345, OCT_1 + timedelta(days=1), "u")
    session.commit()
    invoice = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    assert (invoice.status, invoice.total_cents) == ("open", 12_345)
    assert invoice.due_at == _at(NOV_1) + timedelta(days=30)


def test_the_close_periods_job_closes_every_account_and_schedules_the_next_month(session, engine):
    first, second = make_account(session, "First"), make_account(session, "Second")
    for account in (first, second):
        ledger.set_overage_credit_line(session, account.id, 5_000)
        _use(session, account.id, 300, OCT_1 + timedelta(days=1), f"u{account.id}")
    invoices.schedule_period_close(session, now=OCT_1 + timedelta(days=10))
    invoices.schedule_period_close(session, now=OCT_1 + timedelta(days=20))
    session.commit()
    assert run_due_jobs(engine, now=lambda: OCT_1 + timedelta(days=29)) == 0
    run_due_jobs(engine, now=lambda: _at(NOV_1))
    session.expire_all()
    assert [i.total_cents for i in session.exec(select(Invoice).order_by(Invoice.account_id))] == [300, 300]
    pending = session.exec(select(Job).where(Job.kind == "close_periods", Job.status == "pending")).all()
    assert [job.run_at for job in pending] == [datetime(2026, 12, 1, tzinfo=UTC)]


# Plan changes and credit notes


def test_an_upgrade_is_billed_prorated_once_and_a_downgrade_not_at_all(session):
    account = make_account(session)
    mid_month = datetime(2026, 11, 16, 9, tzinfo=UTC)  # 15 of November's 30 days left
    invoice = invoices.issue_for_plan_change(
        session,
        account.id,
        from_plan="pro",
        to_plan="business",
        from_seats=5,
        to_seats=10,
        effective_at=mid_month,
        change_key="change-1",
        now=mid_month,
    )
    again = invoices.issue_for_plan_change(
        session,
        account.id,
        from_plan="pro",
        to_plan="business",
        from_seats=5,
        to_seats=10,
        effective_at=mid_month,
        change_key="change-1",
        now=mid_month,
    )
    downgrade = invoices.issue_for_plan_change(
        session,
        account.id,
        from_plan="business",
        to_plan="pro",
        from_seats=10,
        to_seats=5,
        effective_at=mid_month,
        change_key="change-2",
    )
    session.commit()
    assert again.id == invoice.id and downgrade is None
    assert (invoice.source, invoice.status) == ("plan_change", "open")
    assert invoice.total_cents == (99_000 - 14_500) // 2
    assert _lines(session, invoice) == [
        ("Business plan, 10 seats × $99.00 (Nov 16 – Nov 30, 2026, prorated)", 49_500),
        ("Unused time on Pro plan, 5 seats (Nov 16 – Nov 30, 2026)", -7_250),
    ]


def test_a_credit_note_references_the_invoice_and_cannot_exceed_it(session):
    account = make_account(session)
    original = _issue(session, account.id, "original", cents=5_000)
    note = invoices.issue_credit_note(session, original, amount_cents=2_000, reason="Goodwill", idempotency_key="cn-1")
    with pytest.raises(ValidationFailed):
        invoices.issue_credit_note(session, original, amount_cents=3_001, reason="Too much", idempotency_key="cn-2")
    session.commit()
    assert (note.kind, note.total_cents, note.credited_invoice_id, note.number) == (
        "credit_note",
        -2_000,
        original.id,
        2,
    )
    assert session.get(Invoice, (original.account_id, original.id)).total_cents == 5_000


# Paying an open invoice


def _open_invoice(session, account, cents=14_500, overage=0):
    invoice, _ = invoices.issue_invoice(
        session,
        account.id,
        source="period_close",
        lines=[invoices.LineItem("Pro plan seats", cents)],
        idempotency_key=f"open-{account.id}-{cents}",
        status="open",
        due_at=utcnow() + timedelta(days=14),
        overage_cents=overage,
    )
    session.commit()
    return invoice


def test_paying_an_open_invoice_charges_once_and_a_replay_charges_nothing(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    invoice = _open_invoice(session, account)

    result = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="k1"
    )
    session.commit()
    replay = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="k1"
    )
    session.commit()
    assert result.status == "succeeded" and replay == result
    payment = session.exec(select(Payment).where(Payment.method == "invoice")).one()
    assert (payment.amount_cents, payment.status, payment.stripe_payment_intent_id) == (
        14_500,
        "succeeded",
        result.payment_intent_id,
    )
    session.refresh(invoice)
    assert (invoice.status, invoice.payment_id) == ("paid", payment.id) and invoice.paid_at is not None
    assert invoices.payments_due(session, actor) == []
    assert [row.id for row in invoices.history(session, actor)] == [invoice.public_id]
    with pytest.raises(Conflict, match="already paid"):
        invoices.pay_invoice(session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="k2")
    # Paying it touched no credits: it was not overage.
    assert ledger.balance_of(session, account.id) == 0


def test_the_credit_balance_pays_an_open_invoice_once_as_applied_credit_balance_to_invoice(session, owner):
    actor, account = owner
    ledger.set_overage_credit_line(session, account.id, 10_000)
    grant(session, account.id, 3_000, key="topped-up")
    _use(session, account.id, 4_000, utcnow(), "over")  # 1,000 of overage, billed below
    renewal = _open_invoice(session, account, cents=2_900, overage=1_000)
    too_big = _open_invoice(session, account, cents=9_000)
    assert ledger.balance_of(session, account.id) == -1_000
    # Usage took the overage from the balance already: paying the invoice gives it back first.
    # Nothing covers the bigger one (the overage credit line is not for paying invoices).
    assert {row.number: row.from_balance for row in invoices.payments_due(session, actor)} == {
        invoices.label(renewal, account): False,
        invoices.label(too_big, account): False,
    }
    grant(session, account.id, 2_900, key="more")
    session.commit()
    assert [row.from_balance for row in invoices.payments_due(session, actor)] == [True, False]
    with pytest.raises(Conflict, match=r"does not cover invoice"):
        invoices.pay_from_balance(session, actor, invoice_id=too_big.public_id)
    session.rollback()

    invoices.pay_from_balance(session, actor, invoice_id=renewal.public_id)
    session.commit()
    with pytest.raises(Conflict, match="already paid"):
        invoices.pay_from_balance(session, actor, invoice_id=renewal.public_id)
    session.rollback()
    session.refresh(renewal)
    assert renewal.status == "paid" and renewal.paid_at is not None and renewal.payment_id is None
    # Balance History: the overage given back, then the whole invoice as the seed words it.
    entries = balance_history.history_page(session, actor).rows
    assert [(entry.description, entry.amount) for entry in entries[:2]] == [
        ("Applied credit balance to invoice", "-$29.00"),
        (f"Invoice {invoices.label(renewal, account)} paid: overage applied to your balance", "$10.00"),
    ]
    assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)
    assert [row.id for row in invoices.history(session, actor)] == [renewal.public_id]
    assert audit.events(session, actor, category="payment").rows[0].summary.endswith("from the credit balance")
    with pytest.raises(NotFound):
        invoices.pay_from_balance(session, actor, invoice_id="inv_of_someone_else")


def test_a_declined_card_leaves_the_invoice_open_and_another_card_pays_it(session, owner):
    actor, account = owner
    declining = save_card(session, account, "pm_card_chargeCustomerFail")
    invoice = _open_invoice(session, account, cents=3_000, overage=3_000)
    ledger.set_overage_credit_line(session, account.id, 5_000)
    _use(session, account.id, 3_000, utcnow(), "overage")
    session.commit()

    failed = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=declining, request_key="a"
    )
    session.commit()
    assert (failed.status, failed.message) == ("failed", "Your card was declined.")
    assert session.get(Invoice, (invoice.account_id, invoice.id)).status == "open"

    good = save_card(session, account, "pm_card_visa")
    paid = invoices.pay_invoice(session, actor, invoice_id=invoice.public_id, payment_method_id=good, request_key="b")
    session.commit()
    assert paid.status == "succeeded" and session.get(Invoice, (invoice.account_id, invoice.id)).status == "paid"
    # The overage it billed is back on the balance.
    assert ledger.balance_of(session, account.id) == 0 == ledger.ledger_sum(session, account.id)


def test_3d_secure_is_finished_in_the_browser_and_an_abandoned_attempt_is_cancelled(session, owner, localstripe):
    actor, account = owner
    secure = save_card(session, account, raw_card(localstripe, "4000002500003155"))
    invoice = _open_invoice(session, account)

    first = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=secure, request_key="a"
    )
    session.commit()
    assert first.status == "requires_action" and first.client_secret.startswith(first.payment_intent_id)
    assert invoices.finish_invoice_payment(session, actor, first.payment_intent_id).status == "requires_action"

    # The payer walked away; a new attempt cancels the old intent so it can never charge too.
    second = invoices.pay_invoice(
        session, actor, invoice_id=invoice.public_id, payment_method_id=secure, request_key="b"
    )
    session.commit()
    assert gateway.retrieve_payment_intent(first.payment_intent_id).status == "canceled"
    httpx.post(
        f"{localstripe}/v1/payment_intents/{second.payment_intent_id}/_authenticate",
        data={"client_secret": second.client_secret, "success": "true"},
        auth=("sk_test_localstripe", ""),
    ).raise_for_status()
    finished = invoices.finish_invoice_payment(session, actor, second.payment_intent_id)
    session.commit()
    assert finished.status == "succeeded" and session.get(Invoice, (invoice.account_id, invoice.id)).status == "paid"
    statuses = session.exec(select(Payment.status).where(Payment.method == "invoice").order_by(Payment.id)).all()
    assert statuses == ["canceled", "succeeded"]


def test_the_webhook_marks_an_invoice_paid_once(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    invoice = _open_invoice(session, account, cents=2_000, overage=2_000)
    result = invoices.pay_invoice(session, actor, invoice_id=invoice.public_id, payment_method_id=card, request_key="k")
    session.commit()
    intent = stripe_intent(result.payment_intent_id)
    for event_id in ("evt_1", "evt_2"):
        stripe_events.record_and_handle(
            session, {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": intent}}
        )
    session.commit()
    applied = session.exec(select(LedgerEntry).where(LedgerEntry.source == "invoice_applied")).all()
    assert len(applied) == 1 and session.get(Invoice, (invoice.account_id, invoice.id)).status == "paid"


def test_only_the_accounts_own_open_invoices_can_be_paid_by_billing_managers(session, owner):
    actor, account = owner
    card = save_card(session, account, "pm_card_visa")
    other = make_account(session, "Other")
    foreign = _open_invoice(session, other)
    mine = _open_invoice(session, account)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()
    with pytest.raises(NotFound):
        invoices.pay_invoice(session, actor, invoice_id=foreign.public_id, payment_method_id=card, request_key="x")
    with pytest.raises(PermissionDenied):
        invoices.pay_invoice(session, member, invoice_id=mine.public_id, payment_method_id=card, request_key="x")
    with pytest.raises(ValidationFailed) as refused:
        invoices.pay_invoice(
            session, actor, invoice_id=mine.public_id, payment_method_id="pm_not_mine", request_key="x"
        )
    assert refused.value.field == "payment_method"
    assert session.exec(select(Payment)).all() == []


# Email and PDF


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_an_issued_invoice_is_emailed_with_its_pdf_once(session, engine, smtp_server):
    account = make_account(session)
    billing_settings(session, account.id).billing_email = "ap@acme.example"
    invoice = _issue(session, account.id, "emailed", cents=4_200)
    session.commit()
    run_due_jobs(engine)
    invoices.email_issued(session, invoice.account_id, invoice.id)
    session.commit()
    run_due_jobs(engine)
    [email] = session.exec(select(OutboxEmail)).all()
    number = invoices.label(invoice, account)
    assert (email.to_address, email.subject) == ("ap@acme.example", f"Invoice {number} from Ledgerdesk Inc.")
    assert email.attachment_name == f"invoice-{number}.pdf" and email.sent_at is not None
    assert smtp_server.event.wait(5) and len(smtp_server.messages) == 1
    raw = smtp_server.messages[0].content.decode()
    assert f'filename="invoice-{number}.pdf"' in raw and "Content-Type: application/pdf" in raw


def test_the_pdf_shows_seller_buyer_address_po_tax_ids_lines_and_totals_as_issued(session):
    account = make_account(session, "Acme Corp")
    settings = billing_settings(session, account.id)
    settings.invoice_company_name, settings.invoice_address1 = "Acme Europe GmbH", "Friedrichstraße 68"
    settings.invoice_city, settings.invoice_postal_code, settings.invoice_country = "Berlin", "10117", "DE"
    settings.invoice_po_number, settings.billing_email = "PO-7731", "ap@acme.example"
    session.add(
        TaxRegistration(account_id=account.id, country="DE", type="eu_vat", value="DE136695976", status="verified")
    )
    account.plan_code = "pro"
    ledger.set_overage_credit_line(session, account.id, 5_000)
    _use(session, account.id, 2_500, OCT_1 + timedelta(days=2), "u")
    session.commit()
    invoice = invoices.close_period(session, account.id, NOV_1, now=_at(NOV_1))
    session.commit()
    settings.invoice_address1, settings.invoice_po_number = "Somewhere Else 1", "PO-NEW"
    session.commit()

    text = _pdf_text(invoices.render_pdf(session, invoice))
    for expected in (
        "Invoice",
        f"Invoice number {invoices.label(invoice, account)}",
        "Invoice date Nov 1, 2026",
        "Due date Nov 15, 2026",
        "PO number PO-7731",
        "Ledgerdesk Inc.",
        "Acme Europe GmbH",
        "Friedrichstraße 68",
        "10117 Berlin",
        "Germany",
        "ap@acme.example",
        "European VAT number DE136695976",
        "Usage through Oct 31, 2026 1 $25.00 $25.00",
        "Pro plan seats, Nov 1 – Nov 30, 2026 5 $29.00 $145.00",
        "Total $170.00",
        "Amount due $170.00",
    ):
        assert expected in text, f"{expected!r} not in the PDF:\n{text}"
    assert "Somewhere Else" not in text and "PO-NEW" not in text


def test_a_paid_receipt_pdf_says_paid_and_nothing_due(session):
    account = make_account(session)
    invoice = _issue(session, account.id, "receipt", cents=2_500)
    session.commit()
    text = _pdf_text(invoices.render_pdf(session, invoice))
    assert "Payment date" in text and "Amount paid $25.00" in text and "Amount due $0.00" in text
    assert "Due date" not in text


@pytest.fixture
def pdf_client(engine):
    api = FastAPI()
    api.include_router(invoices_api.router)
    api.dependency_overrides[invoices_api.invoices_engine] = lambda: engine
    from app.api import create_api  # the DomainError handler turns refusals into statuses

    handler = create_api().exception_handlers
    api.exception_handlers.update(handler)
    with TestClient(api) as client:
        yield client


def _signed_in(session, email) -> str:
    token = signed_in_token(session, email)
    session.commit()
    return token


def test_the_pdf_endpoint_serves_only_the_accounts_own_invoices_to_billing_viewers(session, pdf_client):
    account, other = make_account(session, "Mine"), make_account(session, "Other")
    owner = make_user(session, account, "owner@mine.example")
    member = make_user(session, account, "member@mine.example", "member")
    mine, foreign = _issue(session, account.id, "mine"), _issue(session, other.id, "foreign")
    session.commit()
    url = f"/api/invoices/{mine.public_id}/pdf"
    assert pdf_client.get(url).status_code == 401

    pdf_client.cookies.set(auth.SESSION_COOKIE, _signed_in(session, owner.email))
    response = pdf_client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert f'filename="invoice-{invoices.label(mine, account)}.pdf"' in response.headers["content-disposition"]
    assert invoices.label(mine, account) in _pdf_text(response.content)
    assert pdf_client.get(f"/api/invoices/{foreign.public_id}/pdf").status_code == 404

    pdf_client.cookies.set(auth.SESSION_COOKIE, _signed_in(session, member.email))
    assert pdf_client.get(url).status_code == 403


# Demo data


def _demo_state(session, account_id):
    rows = session.exec(select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.number)).all()
    registrations = session.exec(select(TaxRegistration).where(TaxRegistration.account_id == account_id)).all()
    return [(i.number, i.status, i.source) for i in rows], sorted((r.value, r.status) for r in registrations)


def test_the_demo_has_paid_invoices_an_open_one_and_seeding_again_changes_nothing(session, localstripe):
    seed_demo(session)
    session.commit()
    account = session.exec(select(Account)).one()
    first = _demo_state(session, account.id)
    demo_invoices.seed(session, account, utcnow())
    session.commit()
    assert _demo_state(session, account.id) == first
    numbers, registrations = first
    assert sorted(status for _, status, _ in numbers) == ["open", "paid", "paid", "paid"]
    assert [n for n, _, _ in numbers] == [1, 2, 3, 4]
    assert registrations == [("DE136695976", "verified"), ("PL1111111111", "unverified")]
    settings = billing_settings(session, account.id)
    assert (settings.invoice_po_number, settings.billing_email) == ("PO-2026-0042", "billing@northwind.example")
    customer = gateway.client().v1.customers.retrieve(stripe_customer_id(session, account.id)).to_dict()
    assert customer["address"]["city"] == "Berlin"


@pytest.fixture
def stripe_unreachable(monkeypatch):
    point_stripe_at(monkeypatch, "http://127.0.0.1:9")
    yield
    get_settings.cache_clear()


def test_the_demo_invoices_are_seeded_without_stripe_too(session, stripe_unreachable):
    account = make_account(session, "Northwind Analytics")
    account.plan_code = "pro"
    now = utcnow()
    demo_usage_credits.seed(session, account, now)
    demo_invoices.seed(session, account, now)
    demo_invoices.seed(session, account, now)
    session.commit()
    numbers, registrations = _demo_state(session, account.id)
    assert len(numbers) == 4 and [status for _, status, _ in numbers].count("open") == 1
    assert registrations == [("DE136695976", "verified"), ("PL1111111111", "unverified")]
