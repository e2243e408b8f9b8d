"""Demo data for the billing pages: a trial grant, three top-ups, a promotional grant that expires
within the month (the Overview's "Expiring soon") and a month of usage, with the grants' draws
allocated. Every entry has a fixed idempotency key, so seeding twice changes nothing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session

from app.models import Account
from app.services import grants, ledger

DAYS = 30
TRIAL_CENTS = 5_000
TRIAL_DAYS = 60  # the trial's credits may be used this long
PROMOTION_CENTS = 4_000
PROMOTION_AGO, PROMOTION_DAYS = 3, 24  # granted 3 days ago, usable for 24 days
PURCHASES = ((27, 10_000), (17, 5_000), (7, 10_000))  # (days ago, cents)


def seed(session: Session, account: Account, now: datetime) -> None:
    assert account.id is not None  # seeded accounts are saved
    rng = random.Random(3)  # the same month for every account and every run
    today = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    events = [
        (today - timedelta(days=DAYS), "grant", TRIAL_CENTS, "Free Trial Credits", "trial"),
        (today - timedelta(days=PROMOTION_AGO), "grant", PROMOTION_CENTS, "Winter promotion credits", "promotion"),
    ]
    lifetime = {"trial": TRIAL_DAYS, "promotion": PROMOTION_DAYS}
    for number, (days_ago, cents) in enumerate(PURCHASES, start=1):
        intent = f"pi_demo{account.id:04d}{number:02d}"
        description = f"Stripe Payment Intent {intent} via Add Usage Credits"
        events.append((now - timedelta(days=days_ago), "purchase", cents, description, intent))
    for days_ago in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=days_ago)
        minutes = int((min(now, day + timedelta(days=1)) - day).total_seconds() // 60)
        for number in range(rng.randint(1, 4)):
            calls = rng.randint(200, 3_000)
            at = day + timedelta(minutes=rng.randint(0, max(minutes - 1, 0)))
            events.append((at, "usage", -(calls // 10), f"API usage: {calls:,} calls", f"usage-{days_ago}-{number}"))
    for at, source, cents, description, key in sorted(events):
        idempotency_key = f"demo:{account.id}:{key}"
        if cents > 0:
            entry = ledger.credit(
                session,
                account_id=account.id,
                amount_cents=cents,
                source=source,
                description=description,
                idempotency_key=idempotency_key,
                now=at,
            )
            if key in lifetime:
                grants.record_grant(session, entry, expires_at=at + timedelta(days=lifetime[key]))
        else:
            ledger.debit(
                session,
                account_id=account.id,
                amount_cents=-cents,
                description=description,
                idempotency_key=idempotency_key,
                now=at,
            )
    grants.allocate(session, account.id)
