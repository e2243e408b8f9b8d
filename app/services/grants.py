"""Credit grants: promotional and operator-granted credits that may expire and have a priority.

Debits never look at grants: the debit statement is unchanged, so the metering path costs what
it did. Allocation is lazy: job "grant_upkeep" (every minute) walks each account's ledger entries
after its cursor (`grant_cursor.last_entry_id`), in id order, and draws each debit from the open
grants in the order of `draw_order` (soonest expiry first, then highest priority, then oldest;
grants that never expire after those that do), then from purchased credits, writing one
`grant_draw` row per (debit, grant) and moving the cursor in the same transaction, so a rerun or
a second worker (the cursor row is locked) draws nothing twice. Entry ids of one account grow in
commit order (every ledger insert follows the UPDATE that locks the account's balance row), so a
walk never skips an entry that commits later.

The walk itself is `allocate_entries`, a pure function. Its rules:
- a grant's own entry opens it; when purchased credits are below zero (debt) it first covers
  that debt, and only the rest remains to draw;
- a refund or dispute takes back purchased credits first (their money went back), then grants;
- every other debit (usage, an operator's take-back, …) draws from grants first, then purchased;
- an `expired` entry is the grant's own expiry (below) and moves nothing more.
A grant pays until its expiry entry is posted (its job runs at `expires_at`, within seconds), so
while any grant has credits left, purchased credits are not below zero, and what a grant has
left is never more than the balance.

At `expires_at`, job "expire_grant" (and the upkeep, for any it missed) locks the balance row,
walks the ledger up to then, posts one `expired` entry of minus what is left (idempotency key
`grant_expired:<grant>`, so it happens once however many workers or restarts run it) and marks
the grant expired."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, insert, or_, update
from sqlmodel import Session, col, select

from app.errors import ValidationFailed
from app.jobs.queue import enqueue
from app.models import CreditBalance, CreditGrant, GrantCursor, GrantDraw, LedgerEntry, utcnow
from app.services import ledger
from app.services.money import format_usd
from app.services.timefmt import format_date, format_datetime, zone

PRIORITY_MAX = 100
EXPIRING_SOON = timedelta(days=30)
UPKEEP_EVERY = timedelta(minutes=1)
# Accounts walked by one set of statements.
UPKEEP_BATCH = 200
# Money Stripe gave back: taken from purchased credits before any grant.
PURCHASED_FIRST = ledger.TAKEN_BACK_SOURCES


@dataclass(frozen=True)
class OpenGrant:
    id: int
    entry_id: int
    amount_cents: int
    remaining_cents: int
    expires_at: datetime | None
    priority: int
    # Its own ledger entry was walked already (else the walk opens it when it gets there).
    opened: bool


@dataclass(frozen=True)
class Entry:
    id: int
    amount_cents: int
    source: str


@dataclass(frozen=True)
class Draw:
    entry_id: int
    grant_id: int
    amount_cents: int


@dataclass(frozen=True)
class Allocation:
    draws: list[Draw]
    # Every grant given, with what it has left after the walk.
    grants: list[OpenGrant]
    purchased_cents: int


def draw_order(grant: OpenGrant) -> tuple:
    """Soonest expiry first (never-expiring last), then highest priority, then the oldest."""
    never = grant.expires_at is None
    return (never, grant.expires_at.timestamp() if grant.expires_at else 0.0, -grant.priority, grant.id)


def allocate_entries(grants: Sequence[OpenGrant], purchased_cents: int, entries: Iterable[Entry]) -> Allocation:
    """Walk `entries` (in id order) against `grants` and the purchased credits left: which grant
    paid how much of which debit, what each grant has left and what is left of purchased credits."""
    remaining = {grant.id: grant.remaining_cents for grant in grants}
    waiting = {grant.entry_id: grant for grant in grants if not grant.opened}
    # The open grants in draw order; re-sorted only when a grant opens (rare).
    order = sorted((grant for grant in grants if grant.opened), key=draw_order)
    draws: list[Draw] = []
    purchased = purchased_cents

    def take_from_grants(entry_id: int, wanted: int) -> int:
        for grant in order:
            left = remaining[grant.id]
            if left > 0:
                take = min(wanted, left)
                remaining[grant.id] = left - take
                draws.append(Draw(entry_id, grant.id, take))
                wanted -= take
                if wanted == 0:
                    break
        return wanted

    for entry in entries:
        if entry.id in waiting:
            grant = waiting.pop(entry.id)
            covered = min(grant.amount_cents, max(-purchased, 0))
            purchased += covered
            remaining[grant.id] = grant.amount_cents - covered
            order = sorted([*order, grant], key=draw_order)
        elif entry.amount_cents > 0:
            purchased += entry.amount_cents
        elif entry.source == "expired":
            continue
        elif entry.source in PURCHASED_FIRST:
            wanted = -entry.amount_cents
            from_purchased = min(wanted, max(purchased, 0))
            purchased -= from_purchased + take_from_grants(entry.id, wanted - from_purchased)
        elif entry.amount_cents < 0:
            purchased -= take_from_grants(entry.id, -entry.amount_cents)
    after = [
        replace(grant, remaining_cents=remaining[grant.id], opened=grant.opened or grant.entry_id not in waiting)
        for grant in grants
    ]
    return Allocation(draws, after, purchased)


def validate(expires_at: datetime | None, priority: int | None, now: datetime) -> int:
    """A grant's expiry must be in the future; its priority 0 to PRIORITY_MAX (0 when not given)."""
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationFailed("Give the expiry with its timezone.", field="expires_at")
        if expires_at <= now:
            raise ValidationFailed("The expiry must be in the future.", field="expires_at")
    if priority is None:
        return 0
    if type(priority) is not int or not 0 <= priority <= PRIORITY_MAX:
        raise ValidationFailed(f"The priority is a whole number from 0 to {PRIORITY_MAX}.", field="priority")
    return priority


def expiry_of_day(text: str, timezone: str) -> datetime | None:
    """The expiry of a grant "valid through" a day (ISO, in the account's timezone): the start of
    the next day there; None for an empty field."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter the last day as YYYY-MM-DD, or leave it empty.", field="expires_at") from None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone(timezone)).astimezone(UTC)


def priority_of(text: str) -> int | None:
    """A form's priority: None when empty, else a whole number (`validate` checks its range)."""
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationFailed(f"The priority is a whole number from 0 to {PRIORITY_MAX}.", field="priority")
    return int(text)


def record_grant(
    session: Session, entry: LedgerEntry, *, expires_at: datetime | None, priority: int = 0
) -> CreditGrant:
    """Make the credit `entry` (just posted, in this transaction) a grant, and schedule its
    expiry. Idempotent: an entry that is a grant already returns it."""
    assert entry.id is not None and entry.amount_cents > 0
    found = session.exec(
        select(CreditGrant).where(CreditGrant.account_id == entry.account_id, CreditGrant.ledger_entry_id == entry.id)
    ).first()
    if found is not None:
        return found
    grant = CreditGrant(
        account_id=entry.account_id,
        ledger_entry_id=entry.id,
        amount_cents=entry.amount_cents,
        remaining_cents=entry.amount_cents,
        expires_at=expires_at,
        priority=priority,
        created_at=entry.created_at,
    )
    session.add(grant)
    cursor = session.get(GrantCursor, entry.account_id)
    if cursor is None or not _has_open_grants(session, entry.account_id, cursor.last_entry_id, but=entry.id):
        # Nothing to draw from yet: every earlier entry went to purchased credits, so the walk
        # may start at this grant with the balance before it (the entry holds the balance row's
        # lock, so no earlier entry commits after it).
        cursor = cursor or GrantCursor(account_id=entry.account_id, last_entry_id=0, purchased_cents=0)
        cursor.last_entry_id = entry.id - 1
        cursor.purchased_cents = entry.balance_after_cents - entry.amount_cents
        cursor.updated_at = utcnow()
        session.add(cursor)
    session.flush()
    if expires_at is not None:
        enqueue(
            session,
            "expire_grant",
            {"account_id": entry.account_id, "grant_id": grant.id},
            dedupe_key=f"expire_grant:{grant.public_id}",
            run_at=expires_at,
        )
    return grant


def _has_open_grants(session: Session, account_id: int, walked_to: int, *, but: int) -> bool:
    return (
        session.exec(
            select(CreditGrant.id)
            .where(
                CreditGrant.account_id == account_id,
                col(CreditGrant.ledger_entry_id) != but,
                col(CreditGrant.expired).is_(False),
                or_(col(CreditGrant.remaining_cents) > 0, col(CreditGrant.ledger_entry_id) > walked_to),
            )
            .limit(1)
        ).first()
        is not None
    )


def allocate(session: Session, account_id: int) -> int:
    """Walk the account's new ledger entries and record their draws (see the module). Returns how
    many entries were walked; 0 for an account that never had a grant."""
    return allocate_many(session, [account_id])


def allocate_many(session: Session, account_ids: Sequence[int]) -> int:
    """`allocate` for several accounts at once: a few set-based statements whatever their number
    (the cursors locked in account order, so two workers never deadlock). Returns how many
    entries were walked."""
    if not account_ids:
        return 0
    ids = sorted(set(account_ids))
    query = (
        select(GrantCursor.account_id, GrantCursor.last_entry_id, GrantCursor.purchased_cents)
        .where(col(GrantCursor.account_id).in_(ids))
        .order_by(col(GrantCursor.account_id))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    cursors = {account_id: (last, purchased) for account_id, last, purchased in session.exec(query).all()}
    if not cursors:
        return 0
    walking = sorted(cursors)
    after = col(GrantCursor.last_entry_id)
    open_grants: dict[int, list[OpenGrant]] = {account_id: [] for account_id in walking}
    for grant, last in session.exec(
        select(CreditGrant, after)
        .join(GrantCursor, col(GrantCursor.account_id) == col(CreditGrant.account_id))
        .where(
            col(CreditGrant.account_id).in_(walking),
            col(CreditGrant.expired).is_(False),
            or_(col(CreditGrant.remaining_cents) > 0, col(CreditGrant.ledger_entry_id) > after),
        )
    ).all():
        open_grants[grant.account_id].append(
            OpenGrant(
                grant.id or 0,
                grant.ledger_entry_id,
                grant.amount_cents,
                grant.remaining_cents,
                grant.expires_at,
                grant.priority,
                grant.ledger_entry_id <= last,
            )
        )
    entries: dict[int, list[Entry]] = {account_id: [] for account_id in walking}
    for account_id, entry_id, amount, source in session.exec(
        select(LedgerEntry.account_id, LedgerEntry.id, LedgerEntry.amount_cents, LedgerEntry.source)
        .join(GrantCursor, col(GrantCursor.account_id) == col(LedgerEntry.account_id))
        .where(col(LedgerEntry.account_id).in_(walking), col(LedgerEntry.id) > after)
        .order_by(col(LedgerEntry.account_id), col(LedgerEntry.id))
    ).all():
        entries[account_id].append(Entry(entry_id or 0, amount, source))
    draws: list[dict] = []
    grants_left: list[dict] = []
    moved: list[dict] = []
    now = utcnow()
    for account_id in walking:
        if not entries[account_id]:
            continue
        result = allocate_entries(open_grants[account_id], cursors[account_id][1], entries[account_id])
        draws += [
            {
                "account_id": account_id,
                "ledger_entry_id": d.entry_id,
                "grant_id": d.grant_id,
                "amount_cents": d.amount_cents,
            }
            for d in result.draws
        ]
        before = {g.id: g.remaining_cents for g in open_grants[account_id]}
        grants_left += [
            {"account_id": account_id, "id": g.id, "remaining_cents": g.remaining_cents}
            for g in result.grants
            if g.remaining_cents != before[g.id]
        ]
        moved.append(
            {
                "account_id": account_id,
                "last_entry_id": entries[account_id][-1].id,
                "purchased_cents": result.purchased_cents,
                "updated_at": now,
            }
        )
    if draws:
        session.execute(insert(GrantDraw), draws)
    if grants_left:
        session.execute(update(CreditGrant), grants_left)
    if moved:
        session.execute(update(GrantCursor), moved)
    return sum(len(e) for e in entries.values())


def expire_grant(session: Session, account_id: int, grant_id: int, now: datetime | None = None) -> LedgerEntry | None:
    """Job "expire_grant": take off what the grant has left at its expiry, once. None when it is
    not due yet, already expired, or had nothing left."""
    now = now or utcnow()
    grant = session.get(CreditGrant, (account_id, grant_id))
    if grant is None or grant.expires_at is None or grant.expires_at > now:
        return None
    # The balance row's lock first (as a debit takes it): no entry of the account commits between
    # the walk and the expiry entry, and a second worker waits here, then finds the grant expired.
    lock = select(CreditBalance.account_id).where(CreditBalance.account_id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        lock = lock.with_for_update()
    session.exec(lock).first()
    session.refresh(grant)
    if grant.expired:
        return None
    allocate(session, account_id)
    session.refresh(grant)
    entry = None
    if grant.remaining_cents > 0:
        entry = ledger.expire(
            session,
            account_id=account_id,
            amount_cents=grant.remaining_cents,
            description=f"Expired: what was left of {_granted_as(session, grant)}"[:500],
            idempotency_key=f"grant_expired:{grant.public_id}",
            now=now,
        )
        grant.expired_entry_id = entry.id
        # The walk has passed every earlier entry; this one moves only the grant.
        session.exec(
            update(GrantCursor)
            .where(col(GrantCursor.account_id) == account_id, col(GrantCursor.last_entry_id) < entry.id)
            .values(last_entry_id=entry.id)
        )
    grant.expired, grant.remaining_cents = True, 0
    session.add(grant)
    session.flush()
    return entry


def _granted_as(session: Session, grant: CreditGrant) -> str:
    entry = session.get(LedgerEntry, (grant.account_id, grant.ledger_entry_id))
    return f"“{entry.description}”" if entry is not None and entry.description else "a credit grant"


def upkeep(session: Session, now: datetime | None = None, limit: int = 500) -> None:
    """Job "grant_upkeep": expire the grants that are due (in case their own job failed), walk the
    accounts with an open grant and new ledger entries, then schedule the next run. Expiries come
    first: each takes a balance row's lock and then its cursor's, as a grant or an expiry job
    does, so no transaction waits for a balance row while holding a cursor another waits for."""
    now = now or utcnow()
    due = session.exec(
        select(CreditGrant.account_id, CreditGrant.id)
        .where(col(CreditGrant.expired).is_(False), col(CreditGrant.expires_at) <= now)
        .order_by(col(CreditGrant.account_id), col(CreditGrant.id))
        .limit(limit)
    ).all()
    for account_id, grant_id in due:
        expire_grant(session, account_id, grant_id or 0, now)
    accounts = session.exec(
        select(GrantCursor.account_id)
        .where(
            select(LedgerEntry.id)
            .where(
                col(LedgerEntry.account_id) == col(GrantCursor.account_id),
                col(LedgerEntry.id) > col(GrantCursor.last_entry_id),
            )
            .exists(),
            select(CreditGrant.id)
            .where(
                col(CreditGrant.account_id) == col(GrantCursor.account_id),
                col(CreditGrant.expired).is_(False),
                or_(
                    col(CreditGrant.remaining_cents) > 0,
                    col(CreditGrant.ledger_entry_id) > col(GrantCursor.last_entry_id),
                ),
            )
            .exists(),
        )
        # The least recently walked first, so a backlog of more than `limit` accounts rotates.
        .order_by(col(GrantCursor.updated_at), col(GrantCursor.account_id))
        .limit(limit)
    ).all()
    for first in range(0, len(accounts), UPKEEP_BATCH):
        allocate_many(session, accounts[first : first + UPKEEP_BATCH])
    schedule_upkeep(session, now)


def schedule_upkeep(session: Session, now: datetime | None = None) -> None:
    """Make sure the next upkeep is due; each run schedules the one after it."""
    step = int(UPKEEP_EVERY.total_seconds())
    run_at = datetime.fromtimestamp((int((now or utcnow()).timestamp()) // step + 1) * step, tz=UTC)
    enqueue(session, "grant_upkeep", {}, dedupe_key=f"grant_upkeep:{run_at.isoformat()}", run_at=run_at)


@dataclass(frozen=True)
class Expiry:
    amount_cents: int
    expires_at: datetime


def next_expiry(session: Session, account_id: int, now: datetime | None = None) -> Expiry | None:
    """What the next expiry will take off: the credits left of the grants that expire soonest
    (as of the last allocation); None when no grant with credits left expires."""
    now = now or utcnow()
    soonest = session.exec(
        select(func.min(CreditGrant.expires_at)).where(
            CreditGrant.account_id == account_id,
            col(CreditGrant.expired).is_(False),
            col(CreditGrant.remaining_cents) > 0,
            col(CreditGrant.expires_at) > now,
        )
    ).one()
    if soonest is None:
        return None
    left = session.exec(
        select(func.sum(CreditGrant.remaining_cents)).where(
            CreditGrant.account_id == account_id,
            col(CreditGrant.expired).is_(False),
            col(CreditGrant.expires_at) == soonest,
        )
    ).one()
    return Expiry(int(left or 0), soonest)


def expiring_soon(session: Session, account_id: int, timezone: str, now: datetime | None = None) -> str:
    """ "Expiring soon: $8.00 of promotional credits on Dec 20, 2026 at 00:00 CET …" when the next expiry
    is within EXPIRING_SOON (in the account's timezone), else ""."""
    now = now or utcnow()
    found = next_expiry(session, account_id, now)
    if found is None or found.amount_cents <= 0 or found.expires_at > now + EXPIRING_SOON:
        return ""
    local = found.expires_at.astimezone(zone(timezone))
    return (
        f"Expiring soon: {format_usd(found.amount_cents)} of promotional credits on {format_date(local.date())} "
        f"at {local:%H:%M} {local.tzname()} (they are used before purchased credits)."
    )


def promotional_paid(session: Session, account_id: int, *conditions) -> int:
    """What grants paid of the account's usage entries that match `conditions` (on LedgerEntry),
    as the allocation has recorded it."""
    paid = session.exec(
        select(func.coalesce(func.sum(GrantDraw.amount_cents), 0))
        .join(LedgerEntry, col(LedgerEntry.id) == col(GrantDraw.ledger_entry_id))
        .where(
            GrantDraw.account_id == account_id,
            LedgerEntry.account_id == account_id,
            LedgerEntry.source == "usage",
            *conditions,
        )
    ).one()
    return int(paid)


def grant_note(grant: CreditGrant, timezone: str) -> str:
    """What Balance History adds to a grant's description: its expiry, or that it expired."""
    if grant.expired:
        return "expired"
    if grant.expires_at is None:
        return "never expires"
    return f"expires {format_datetime(grant.expires_at, timezone)}"


def grants_of_entries(session: Session, account_id: int, entry_ids: Sequence[int]) -> dict[int, CreditGrant]:
    """The grants made by these ledger entries, by entry id."""
    if not entry_ids:
        return {}
    rows = session.exec(
        select(CreditGrant).where(
            CreditGrant.account_id == account_id, col(CreditGrant.ledger_entry_id).in_(list(entry_ids))
        )
    ).all()
    return {row.ledger_entry_id: row for row in rows}
