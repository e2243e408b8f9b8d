"""Spend Management: the form's validation and the limits it puts in force, the daily budget and
notification threshold across UTC days, and the threshold email through a real SMTP server."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from app.demo import spend_management as spend_demo
from app.demo import usage_credits
from app.errors import FormInvalid, PermissionDenied
from app.jobs import handlers  # noqa: F401  registers the job handlers
from app.jobs.queue import run_due_jobs
from app.models import BillingSettings, CreditBalance, Job, OutboxEmail, WebhookDelivery, utcnow
from app.services import ledger, spend
from app.services.ledger import DailyBudgetExceeded
from app.services.overview import billing_settings
from tests.factories import actor_for, grant, make_user, owner_and_account

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _funded(session, cents=100_000):
    actor, account = owner_and_account(session)
    grant(session, account.id, cents, key=f"g{account.id}")
    session.commit()
    return actor, account


def _save(session, actor, enabled=True, budget="", threshold="", url=""):
    settings = spend.save_settings(
        session, actor, enabled=enabled, daily_budget=budget, notify_threshold=threshold, webhook_url=url
    )
    session.commit()
    return settings


def _use(session, account, cents, key, now=NOON):
    entry = ledger.debit_usage(
        session, account_id=account.id, amount_cents=cents, idempotency_key=f"{account.id}:{key}", now=now
    )
    session.commit()
    return entry


def _in_force(session, account):
    row = session.get(CreditBalance, account.id, populate_existing=True)
    return row.daily_budget_cents, row.daily_notify_threshold_cents


def test_saving_puts_the_limits_in_force_and_turning_off_lifts_them(session):
    actor, account = _funded(session)
    _save(session, actor, budget="500", threshold="$300.50", url="https://hooks.example.com/spend")
    assert _in_force(session, account) == (50_000, 30_050)
    settings = billing_settings(session, account.id)
    assert (settings.spend_management_enabled, settings.webhook_url) == (True, "https://hooks.example.com/spend")
    assert settings.webhook_secret.startswith("whsec_")

    _save(session, actor, enabled=False, budget="500", threshold="300.50")
    assert _in_force(session, account) == (None, None)
    settings = billing_settings(session, account.id)
    assert (settings.spend_management_enabled, settings.daily_budget_cents) == (False, 50_000)

    _save(session, actor, budget="", threshold="")
    assert _in_force(session, account) == (None, None)


def test_the_budget_refuses_usage_until_the_next_utc_day(session):
    actor, account = _funded(session)
    _save(session, actor, budget="1.00")
    _use(session, account, 60, "a", NOON)
    with pytest.raises(DailyBudgetExceeded):
        _use(session, account, 60, "b", NOON)
    assert (
        spend.spend_view(session, actor, now=NOON).budget_status == "$0.40 of today's $1.00 budget is left (UTC day)."
    )
    _use(session, account, 40, "c", NOON)
    # The page says the budget is reached and until when calls are refused.
    view = spend.spend_view(session, actor, now=NOON)
    assert view.budget_reached
    assert view.budget_status == (
        "Today's budget of $1.00 is reached: API calls are refused until midnight UTC (in 12 h 0 min)."
    )
    with pytest.raises(DailyBudgetExceeded) as refused:
        _use(session, account, 1, "d", datetime(2026, 3, 10, 23, 59, 30, tzinfo=UTC))
    session.rollback()
    assert refused.value.retry_after_seconds == 30
    assert not spend.spend_view(session, actor, now=datetime(2026, 3, 11, 0, 0, tzinfo=UTC)).budget_reached
    _use(session, account, 90, "e", datetime(2026, 3, 11, 0, 0, tzinfo=UTC))
    assert ledger.balance_of(session, account.id) == ledger.ledger_sum(session, account.id) == 100_000 - 190


def test_a_budget_below_todays_usage_blocks_at_once(session):
    actor, account = _funded(session)
    now = utcnow()
    _use(session, account, 700, "a", now)
    _save(session, actor, budget="5")
    with pytest.raises(DailyBudgetExceeded):
        _use(session, account, 1, "b", now)
    session.rollback()
    assert spend.spend_settings(session, actor, now=now).used_today_cents == 700


def test_credits_consumed_today_and_yesterday_are_utc_days(session):
    actor, account = _funded(session)
    _use(session, account, 150, "y1", datetime(2026, 3, 9, 0, 0, tzinfo=UTC))
    _use(session, account, 250, "y2", datetime(2026, 3, 9, 23, 59, tzinfo=UTC))
    _use(session, account, 400, "t1", datetime(2026, 3, 10, 0, 1, tzinfo=UTC))
    view = spend.spend_settings(session, actor, now=NOON)
    assert (view.used_today_cents, view.used_yesterday_cents) == (400, 400)
    next_day = spend.spend_settings(session, actor, now=NOON + timedelta(days=1))
    assert (next_day.used_today_cents, next_day.used_yesterday_cents) == (0, 400)


@pytest.mark.parametrize(
    ("budget", "threshold", "url", "errors"),
    [
        ("100", "150", "", {"notify_threshold": "The notification threshold cannot be above the daily budget."}),
        (
            "-5",
            "0",
            "",
            {
                "daily_budget": "The budget must be a positive amount.",
                "notify_threshold": "The notification threshold must be a positive amount.",
            },
        ),
        ("0.00", "", "", {"daily_budget": "The budget must be a positive amount."}),
        ("ten", "", "", {"daily_budget": "Enter an amount in dollars, such as 25 or 25.50."}),
        ("", "", "ftp://hooks.example.com/x", {"webhook_url": "Enter a URL starting with http:// or https://."}),
        ("", "", "hooks.example.com/x", {"webhook_url": "Enter a URL starting with http:// or https://."}),
        (
            "",
            "",
            "http://localhost:3000/api/webhooks/stripe",
            {"webhook_url": "The webhook URL cannot point at this console."},
        ),
        ("", "", "http://127.0.0.1:3000/", {"webhook_url": "The webhook URL cannot point at this console."}),
        ("", "", "http://[::1]:3000/x", {"webhook_url": "The webhook URL cannot point at this console."}),
        ("", "", "http://0.0.0.0:3000/x", {"webhook_url": "The webhook URL cannot point at this console."}),
    ],
)
def test_bad_input_is_refused_field_by_field_and_changes_nothing(session, budget, threshold, url, errors):
    actor, account = _funded(session)
    _save(session, actor, budget="50", threshold="20", url="https://hooks.example.com/ok")
    with pytest.raises(FormInvalid) as refused:
        spend.save_settings(
            session, actor, enabled=False, daily_budget=budget, notify_threshold=threshold, webhook_url=url
        )
    session.rollback()
    assert refused.value.errors == errors
    settings = session.get(BillingSettings, account.id, populate_existing=True)
    assert (settings.spend_management_enabled, settings.daily_budget_cents, settings.daily_notify_threshold_cents) == (
        True,
        5_000,
        2_000,
    )
    assert settings.webhook_url == "https://hooks.example.com/ok"
    assert _in_force(session, account) == (5_000, 2_000)


def test_a_url_at_the_public_address_of_the_console_is_refused(session, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("PUBLIC_URL", "https://billing.example.com")
    get_settings.cache_clear()
    try:
        actor, _ = _funded(session)
        with pytest.raises(FormInvalid):
            _save(session, actor, url="https://BILLING.example.com:443/hook")
        session.rollback()
        assert _save(session, actor, url="https://billing.example.com:8443/hook").webhook_url.endswith(":8443/hook")
    finally:
        monkeypatch.delenv("PUBLIC_URL")
        get_settings.cache_clear()


def test_a_member_can_neither_see_nor_save_spend_management(session):
    actor, account = _funded(session)
    member = actor_for(make_user(session, account, "member@example.com", "member"), "member")
    session.commit()
    with pytest.raises(PermissionDenied):
        spend.spend_settings(session, member)
    with pytest.raises(PermissionDenied):
        _save(session, member, budget="1")
    session.rollback()
    assert _in_force(session, account) == (None, None)
    assert billing_settings(session, account.id).spend_management_enabled is False


def test_threshold_email_once_per_utc_day_through_smtp(engine, smtp_server):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = _funded(session)
        settings = billing_settings(session, account.id)
        settings.billing_email = "ap@acme.example"
        session.add(settings)
        _save(session, actor, budget="10", threshold="4")
        _use(session, account, 300, "a")
        _use(session, account, 150, "b")  # passes $4.00
        _use(session, account, 100, "c")
    run_due_jobs(engine)
    assert smtp_server.event.wait(5)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ap@acme.example"]]
    content = smtp_server.messages[0].content.decode()
    assert "Subject: Daily credit usage passed $4.00 on 2026-03-10 (UTC)" in content
    assert "reached $4.50" in content and "$10.00" in content

    with Session(engine, expire_on_commit=False) as session:
        _use(session, account, 450, "d")  # more usage the same day: no second email
        _use(session, account, 450, "e", NOON + timedelta(days=1))  # the next day: again
    smtp_server.event.clear()
    run_due_jobs(engine)
    assert smtp_server.event.wait(5)
    subjects = [m.content.decode().split("Subject: ")[1].splitlines()[0] for m in smtp_server.messages]
    assert subjects == [
        "Daily credit usage passed $4.00 on 2026-03-10 (UTC)",
        "Daily credit usage passed $4.00 on 2026-03-11 (UTC)",
    ]
    with Session(engine) as session:
        assert all(email.sent_at is not None for email in session.exec(select(OutboxEmail)))


def test_without_a_billing_email_the_owners_are_emailed(engine):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = _funded(session)
        make_user(session, account, "second-owner@example.com", "owner")
        make_user(session, account, "admin@example.com", "admin")
        make_user(session, account, "blocked-owner@example.com", "owner", status="blocked")
        _save(session, actor, threshold="1")
        _use(session, account, 100, "a")
    run_due_jobs(engine)
    with Session(engine) as session:
        assert sorted(e.to_address for e in session.exec(select(OutboxEmail))) == [
            "owner@example.com",
            "second-owner@example.com",
        ]


def test_the_budget_sends_no_email_and_nothing_without_a_webhook(engine):
    with Session(engine, expire_on_commit=False) as session:
        actor, account = _funded(session)
        _save(session, actor, budget="1")
        _use(session, account, 100, "a")
        assert [job.kind for job in session.exec(select(Job))] == ["spend_notification"]
    run_due_jobs(engine)
    with Session(engine) as session:
        assert session.exec(select(OutboxEmail)).all() == []
        assert session.exec(select(WebhookDelivery)).all() == []
        assert [job.status for job in session.exec(select(Job))] == ["done"]


def test_a_notification_job_that_runs_twice_emails_and_posts_once(session):
    actor, account = _funded(session)
    _save(session, actor, budget="10", threshold="1", url="https://hooks.example.com/spend")
    for _ in range(2):
        spend.notify(session, account_id=account.id, kind="threshold", day="2026-03-10", used_cents=120, line_cents=100)
        spend.notify(session, account_id=account.id, kind="budget", day="2026-03-10", used_cents=1000, line_cents=1000)
    session.commit()
    assert len(session.exec(select(OutboxEmail)).all()) == 1
    deliveries = session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [d.event_type for d in deliveries] == ["spend.threshold_reached", "spend.budget_reached"]
    deliver_jobs = session.exec(select(Job).where(Job.kind == "deliver_webhook")).all()
    assert len(deliver_jobs) == 2


def test_the_demo_account_has_spend_management_on_well_above_its_daily_usage(session):
    actor, account = owner_and_account(session)
    now = utcnow()
    usage_credits.seed(session, account, now)
    spend_demo.seed(session, account, now)
    session.commit()
    view = spend.spend_settings(session, actor, now=now)
    assert (view.enabled, view.daily_budget_cents, view.daily_notify_threshold_cents) == (True, 50_000, 30_000)
    assert _in_force(session, account) == (50_000, 30_000)
    assert max(view.used_today_cents, view.used_yesterday_cents) < 30_000
