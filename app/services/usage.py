"""The Usage page: usage debits per day of the account's timezone (as Balance History's dates),
broken down by API key or by description (the top ten of the range and "Other"), as a chart, a
table and CSV; and each key's usage today and this month for the API Keys page.

Read from `usage_rollup` (sums per day, key and description) plus the ledger's usage entries
after the account's watermark (the tail the job has not rolled up yet), so what is shown is
current and reading 90 days costs what the rollup's rows cost, not the ledger's (bench/usage_rollup.py).

The rollup job (`sweep`, job "usage_rollup_sweep" every SWEEP_EVERY, runs `roll_up` for each
account behind) never counts an entry twice: it moves the watermark in the transaction that adds the
entries' sums, under a lock on the account's watermark row, so a second run, concurrent or later,
starts where the first ended. It never skips one either: every posting (`ledger._post`, the
metering fast path's statement) updates the account's credit_balance row before it inserts its
entry and holds that row until it commits, so the entries of one account are numbered in the
order they commit, and below the highest committed id no entry is still to come (SQLite has one
writer at a time anyway). A new way of writing ledger entries must keep that order. A change of
the account's timezone makes the next run start the rollup again in the new days; until then the
page reads the ledger (right, only slower).
"""

from __future__ import annotations

import io
import logging
import time as time_module
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.errors import ValidationFailed
from app.jobs.queue import enqueue
from app.models import Account, ApiKey, CreditBalance, LedgerEntry, UsageRollup, UsageRollupState, utcnow
from app.services import csv_export
from app.services.money import format_usd, plain_dollars
from app.services.permissions import Actor, Permission, require
from app.services.timefmt import format_date, zone

log = logging.getLogger("ledgerdesk.jobs")

SWEEP_EVERY = timedelta(minutes=1)
# A sweep stops starting new work after this long (the job's lease is two minutes).
SWEEP_BUDGET = timedelta(seconds=45)
# Entries rolled up by one run of `roll_up` (one transaction); the sweep runs it again while more are left.
BATCH = 100_000
# Descriptions come from the operator's product and may differ on every call: a day keeps this
# many in the rollup and sums the rest as one, shown with "Other".
MAX_DESCRIPTIONS_PER_DAY = 100
FOLDED = ""
TOP = 10
PRESETS = (7, 30, 90)
MAX_RANGE_DAYS = 366
GROUPINGS = ("key", "description")
OTHER = "Other"
NO_KEY = "No API key"
CSV_HEADER = ("Day", "API key", "Description", "Calls", "Amount USD")
# Radix's color steps, one per series of the top ten; "Other" is gray.
COLORS = tuple(
    f"var(--{name}-9)"
    for name in ("indigo", "cyan", "orange", "crimson", "grass", "violet", "amber", "teal", "pink", "brown")
)
OTHER_COLOR = "var(--gray-8)"

# (day, api key id or 0, description, cents, calls)
Sum = tuple[date, int, str, int, int]


# --- reading: rollup + tail -------------------------------------------------------------------


def _local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone(timezone))


def _ledger_sums(
    session: Session,
    account_id: int,
    timezone: str,
    after_id: int,
    upto_id: int | None = None,
    first: date | None = None,
    last: date | None = None,
) -> list[Sum]:
    """The account's usage entries with after_id < id <= upto_id (and days first..last), summed per
    day of `timezone`, key and description. The account and source are equalities so that
    ix_ledger_entry_account_source_id bounds the ids: the tail is read from there, never from the
    primary key through every account's newer entries (bench/usage_rollup.py)."""
    where: list[ColumnElement[bool]] = [
        col(LedgerEntry.account_id) == account_id,
        col(LedgerEntry.source) == "usage",
        col(LedgerEntry.id) > after_id,
    ]
    if upto_id is not None:
        where.append(col(LedgerEntry.id) <= upto_id)
    if first is not None:
        where.append(col(LedgerEntry.created_at) >= _local_midnight(first, timezone))
    if last is not None:
        where.append(col(LedgerEntry.created_at) < _local_midnight(last + timedelta(days=1), timezone))
    key = func.coalesce(col(LedgerEntry.api_key_id), 0)
    if session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone(zone(timezone).key, col(LedgerEntry.created_at)))
        rows: Sequence[Any] = session.execute(
            sa_select(day, key, col(LedgerEntry.description), -func.sum(col(LedgerEntry.amount_cents)), func.count())
            .where(*where)
            .group_by(day, key, col(LedgerEntry.description))
        ).all()
        return [(day, int(key_id), text, int(cents), int(calls)) for day, key_id, text, cents, calls in rows]
    # SQLite has no timezone database: the days are found here.
    tz = zone(timezone)
    sums: dict[tuple[date, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for created_at, key_id, text, amount in session.exec(
        select(col(LedgerEntry.created_at), key, col(LedgerEntry.description), col(LedgerEntry.amount_cents)).where(
            *where
        )
    ):
        bucket = sums[(created_at.astimezone(tz).date(), int(key_id), text)]
        bucket[0] -= amount
        bucket[1] += 1
    return [(day, key_id, text, cents, calls) for (day, key_id, text), (cents, calls) in sums.items()]


def usage_sums(session: Session, account_id: int, timezone: str, first: date, last: date) -> list[Sum]:
    """Usage of days first..last (of `timezone`): the rollup's rows and the ledger after its
    watermark. The watermark and the rows are read by one statement, so one snapshot: a run of
    the job that commits meanwhile moves entries from the tail to rows this read does not see."""
    state = UsageRollupState
    rows: Sequence[Any] = session.execute(
        sa_select(
            col(state.last_entry_id),
            col(state.timezone),
            col(UsageRollup.day),
            col(UsageRollup.api_key_id),
            col(UsageRollup.description),
            col(UsageRollup.cents),
            col(UsageRollup.calls),
        )
        .select_from(state)
        .outerjoin(
            UsageRollup,
            and_(
                col(UsageRollup.account_id) == col(state.account_id),
                col(UsageRollup.day).between(first, last),
            ),
        )
        .where(col(state.account_id) == account_id)
    ).all()
    watermark = 0
    sums: list[Sum] = []
    if rows and rows[0][1] == timezone:
        watermark = rows[0][0]
        sums = [(day, key_id, text, cents, calls) for _, _, day, key_id, text, cents, calls in rows if day is not None]
    return sums + _ledger_sums(session, account_id, timezone, watermark, first=first, last=last)


# --- the rollup job ---------------------------------------------------------------------------


def _highest_usage_id(session: Session, account_id: int) -> int:
    """The account's highest committed usage entry id: every lower one is committed too (see the
    module's docstring)."""
    highest = session.exec(
        select(func.max(col(LedgerEntry.id))).where(
            col(LedgerEntry.account_id) == account_id, col(LedgerEntry.source) == "usage"
        )
    ).one()
    return highest or 0


def _locked_state(session: Session, account_id: int, timezone: str) -> UsageRollupState:
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.exec(
        insert_(UsageRollupState)
        .values(account_id=account_id, last_entry_id=0, timezone=timezone, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["account_id"])
    )
    query = select(UsageRollupState).where(UsageRollupState.account_id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).one()


def roll_up(session: Session, account_id: int, *, batch: int | None = None) -> bool:
    """Job "usage_rollup": add the account's usage entries after its watermark to usage_rollup (at
    most `batch` of them) and move the watermark, in one transaction (committed here). True when
    entries are left for another run."""
    batch = batch or BATCH
    account = session.get(Account, account_id)
    if account is None:
        return False
    timezone = account.timezone
    state = _locked_state(session, account_id, timezone)
    # Read after the lock: on PostgreSQL (read committed) this statement sees every commit until now.
    upto = _highest_usage_id(session, account_id)
    if state.timezone != timezone:
        session.exec(delete(UsageRollup).where(col(UsageRollup.account_id) == account_id))
        state.last_entry_id, state.timezone = 0, timezone
    capped = session.exec(
        select(col(LedgerEntry.id))
        .where(
            col(LedgerEntry.account_id) == account_id,
            LedgerEntry.source == "usage",
            col(LedgerEntry.id) > state.last_entry_id,
        )
        .order_by(col(LedgerEntry.account_id), col(LedgerEntry.source), col(LedgerEntry.id))
        .offset(batch - 1)
        .limit(1)
    ).first()
    end = min(upto, capped) if capped is not None else upto
    if end > state.last_entry_id:
        _add(session, account_id, _ledger_sums(session, account_id, timezone, state.last_entry_id, end))
        state.last_entry_id = end
    state.updated_at = utcnow()
    session.add(state)
    session.commit()
    return end < upto


def _add(session: Session, account_id: int, sums: list[Sum]) -> None:
    """Add `sums` to the account's rollup rows, a day's descriptions past MAX_DESCRIPTIONS_PER_DAY
    (the biggest kept first) summed as FOLDED. The caller holds the account's state lock."""
    if not sums:
        return
    days = sorted({day for day, *_ in sums})
    existing = {
        (row.day, row.api_key_id, row.description): row
        for row in session.exec(
            select(UsageRollup).where(UsageRollup.account_id == account_id, col(UsageRollup.day).in_(days))
        )
    }
    kept: dict[date, set[str]] = defaultdict(set)
    for day, _, text in existing:
        kept[day].add(text)
    added: dict[tuple[date, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, key_id, text, cents, calls in sorted(sums, key=lambda s: -s[3]):
        if text not in kept[day]:
            if len(kept[day] - {FOLDED}) >= MAX_DESCRIPTIONS_PER_DAY:
                text = FOLDED
            kept[day].add(text)
        bucket = added[(day, key_id, text)]
        bucket[0] += cents
        bucket[1] += calls
    new = []
    for (day, key_id, text), (cents, calls) in added.items():
        row = existing.get((day, key_id, text))
        if row is None:
            new.append(
                {"account_id": account_id, "day": day, "api_key_id": key_id, "description": text}
                | {"cents": cents, "calls": calls}
            )
            continue
        session.exec(
            update(UsageRollup)
            .where(
                col(UsageRollup.account_id) == account_id,
                col(UsageRollup.day) == day,
                col(UsageRollup.api_key_id) == key_id,
                col(UsageRollup.description) == text,
            )
            .values(cents=col(UsageRollup.cents) + cents, calls=col(UsageRollup.calls) + calls)
        )
    if new:
        session.execute(insert(UsageRollup), new)


def accounts_behind(session: Session) -> list[int]:
    """Accounts with usage entries after their watermark, or whose timezone changed; the least
    recently rolled up first."""
    state = UsageRollupState
    newest = (
        select(func.max(col(LedgerEntry.id)))
        .where(col(LedgerEntry.account_id) == col(CreditBalance.account_id), col(LedgerEntry.source) == "usage")
        .scalar_subquery()
    )
    return list(
        session.exec(
            select(col(CreditBalance.account_id))
            .join(Account, col(Account.id) == col(CreditBalance.account_id))
            .outerjoin(state, col(state.account_id) == col(CreditBalance.account_id))
            .where(
                (newest > func.coalesce(col(state.last_entry_id), 0))
                | (col(state.timezone).is_not(None) & (col(state.timezone) != col(Account.timezone)))
            )
            .order_by(col(state.updated_at).is_not(None), col(state.updated_at), col(CreditBalance.account_id))
        )
    )


def watermark(session: Session, account_id: int) -> int:
    state = session.get(UsageRollupState, account_id)
    return state.last_entry_id if state is not None else 0


def _next_sweep(now: datetime) -> datetime:
    step = int(SWEEP_EVERY.total_seconds())
    return datetime.fromtimestamp((int(now.timestamp()) // step + 1) * step, tz=now.tzinfo)


def schedule_sweep(session: Session, now: datetime | None = None) -> None:
    """Make sure the next sweep is due; each sweep schedules the one after it."""
    run_at = _next_sweep(now or utcnow())
    enqueue(session, "usage_rollup_sweep", {}, dedupe_key=f"usage_rollup_sweep:{run_at.isoformat()}", run_at=run_at)


def sweep(session: Session, now: datetime | None = None, budget: timedelta = SWEEP_BUDGET) -> int:
    """Job "usage_rollup_sweep": schedule the next sweep, then roll up the accounts behind, each in
    transactions of its own, until `budget` is spent (the rest wait for the next sweep, least
    recently rolled up first). One job a minute, not one per account: the job table keeps its
    rows. Returns how many accounts were rolled up."""
    schedule_sweep(session, now)
    session.commit()
    deadline = time_module.monotonic() + budget.total_seconds()
    rolled = 0
    behind = accounts_behind(session)
    session.commit()
    for account_id in behind:
        if time_module.monotonic() >= deadline:
            break
        try:
            while roll_up(session, account_id) and time_module.monotonic() < deadline:
                pass
        except Exception:  # one account's failure must not stop the others'; it is tried again next minute
            session.rollback()
            log.exception("usage rollup of account %s failed", account_id)
            continue
        rolled += 1
    return rolled


# --- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesRow:
    """One key or description of the breakdown (the top ten, then "Other")."""

    name: str = ""
    calls: str = ""
    amount: str = ""
    share: str = ""


@dataclass(frozen=True)
class DayRow:
    day: str = ""
    calls: str = ""
    amount: str = ""


@dataclass(frozen=True)
class UsageView:
    first: str
    last: str
    # The chart's series in stacking order (largest first, "Other" last): {"key": "s0", "name":
    # the key's name or the description, "color"}. Keys, not names, index the chart's data: a
    # description may hold anything, and the chart reads dots in a data key as a path.
    series: list[dict[str, str]]
    # {"day": "Mar 02", "s0": dollars, ...} per day, oldest first.
    chart: list[dict]
    rows: list[SeriesRow]
    days: list[DayRow]
    total_amount: str
    total_calls: str
    timezone: str


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def date_range(
    preset: str, date_from: str, date_to: str, timezone: str, now: datetime | None = None
) -> tuple[date, date]:
    """The range's first and last day (of the account's timezone): the last `preset` days up to
    today, or the custom days (preset "custom")."""
    today = (now or utcnow()).astimezone(zone(timezone)).date()
    if preset != "custom":
        days = int(preset) if preset.isdigit() and int(preset) in PRESETS else PRESETS[1]
        return today - timedelta(days=days - 1), today
    first, last = _day(date_from), _day(date_to)
    if first is None:
        raise ValidationFailed("Choose the first day of the range.", field="date_from")
    if last is None:
        raise ValidationFailed("Choose the last day of the range.", field="date_to")
    if first > last:
        raise ValidationFailed("The first day must be on or before the last day.", field="date_to")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValidationFailed(f"A range is at most {MAX_RANGE_DAYS} days.", field="date_from")
    return first, last


def _key_names(session: Session, account_id: int, key_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(key_ids) - {0})
    names: dict[int, str] = {0: NO_KEY}
    if wanted:
        for key_id, name, deleted_at in session.exec(
            select(col(ApiKey.id), col(ApiKey.name), col(ApiKey.deleted_at)).where(
                ApiKey.account_id == account_id, col(ApiKey.id).in_(wanted)
            )
        ):
            label = name or "Unnamed key"
            names[key_id or 0] = f"{label} (deleted)" if deleted_at is not None else label
    return names


def _series_of(name: str) -> str:
    return name if name != FOLDED else OTHER


def breakdown(
    sums: list[Sum], by: str, key_names: dict[int, str], top: int = TOP
) -> tuple[list[str], dict[str, tuple[int, int]], dict[date, dict[str, tuple[int, int]]]]:
    """The top `top` keys or descriptions of the range by credits used (ties by name), then
    "Other" for the rest (and a day's folded descriptions): their names, their totals
    (cents, calls), and each day's (cents, calls) per name."""
    if by not in GROUPINGS:
        raise ValidationFailed("Break usage down by API key or by description.")

    def label(key_id: int, text: str) -> str:
        if by == "key":
            return key_names.get(key_id, "Unknown key")
        return FOLDED if text == FOLDED else text

    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, key_id, text, cents, calls in sums:
        bucket = totals[label(key_id, text)]
        bucket[0] += cents
        bucket[1] += calls
    ranked = sorted((name for name in totals if name != FOLDED), key=lambda name: (-totals[name][0], name))
    named = ranked[:top]
    kept = set(named)

    def series(key_id: int, text: str) -> str:
        name = label(key_id, text)
        return name if name in kept else OTHER

    per_day: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    series_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for day, key_id, text, cents, calls in sums:
        name = series(key_id, text)
        per_day[day][name][0] += cents
        per_day[day][name][1] += calls
        series_totals[name][0] += cents
        series_totals[name][1] += calls
    names = named + ([OTHER] if OTHER in series_totals and OTHER not in kept else [])
    return (
        names,
        {name: (series_totals[name][0], series_totals[name][1]) for name in names},
        {day: {name: (v[0], v[1]) for name, v in by_name.items()} for day, by_name in per_day.items()},
    )


def _context(session: Session, actor: Actor, preset: str, date_from: str, date_to: str, now: datetime | None):
    require(actor, Permission.BILLING_VIEW)
    account = session.get(Account, actor.account_id)
    timezone = account.timezone if account is not None else "UTC"
    first, last = date_range(preset, date_from, date_to, timezone, now)
    return timezone, first, last, usage_sums(session, actor.account_id, timezone, first, last)


def usage_view(
    session: Session,
    actor: Actor,
    *,
    preset: str = "30",
    date_from: str = "",
    date_to: str = "",
    by: str = "key",
    now: datetime | None = None,
) -> UsageView:
    """The actor's account's usage per day of the range, broken down `by` key or description."""
    timezone, first, last, sums = _context(session, actor, preset, date_from, date_to, now)
    names = _key_names(session, actor.account_id, (key_id for _, key_id, *_ in sums))
    series, totals, per_day = breakdown(sums, by, names)
    total_cents = sum(cents for cents, _ in totals.values())
    total_calls = sum(calls for _, calls in totals.values())
    chart, days = [], []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        of_day = per_day.get(day, {})
        chart.append(
            {"day": f"{day:%b %d}"} | {f"s{n}": of_day.get(name, (0, 0))[0] / 100 for n, name in enumerate(series)}
        )
        if of_day:
            days.append(
                DayRow(
                    day=format_date(day),
                    calls=f"{sum(c for _, c in of_day.values()):,}",
                    amount=format_usd(sum(c for c, _ in of_day.values())),
                )
            )
    rows = [
        SeriesRow(
            name=name,
            calls=f"{calls:,}",
            amount=format_usd(cents),
            share=f"{cents / total_cents:.1%}" if total_cents else "—",
        )
        for name, (cents, calls) in totals.items()
    ]
    return UsageView(
        first=first.isoformat(),
        last=last.isoformat(),
        series=[
            {"key": f"s{n}", "name": name, "color": OTHER_COLOR if name == OTHER else COLORS[n % len(COLORS)]}
            for n, name in enumerate(series)
        ],
        chart=chart,
        rows=rows,
        days=list(reversed(days)),
        total_amount=format_usd(total_cents),
        total_calls=f"{total_calls:,}",
        timezone=timezone,
    )


def usage_csv(
    session: Session, actor: Actor, *, preset: str = "30", date_from: str = "", date_to: str = "", now=None
) -> str:
    """The range's usage per day, API key and description, oldest day first and a day's largest
    first (days of the account's
    timezone, as on the page; a day's descriptions past the rollup's limit as "Other")."""
    _, _, _, sums = _context(session, actor, preset, date_from, date_to, now)
    names = _key_names(session, actor.account_id, (key_id for _, key_id, *_ in sums))
    merged: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, key_id, text, cents, calls in sums:
        bucket = merged[(day, names.get(key_id, "Unknown key"), _series_of(text))]
        bucket[0] += cents
        bucket[1] += calls
    out = io.StringIO()
    writer = csv_export.writer(out)
    writer.writerow(CSV_HEADER)
    for (day, key_name, text), (cents, calls) in sorted(
        merged.items(), key=lambda item: (item[0][0], -item[1][0], item[0][1:])
    ):
        writer.writerow((day.isoformat(), key_name, text, calls, plain_dollars(cents)))
    return out.getvalue()


# --- the API Keys page ------------------------------------------------------------------------


def key_usage(
    session: Session, account_id: int, timezone: str, now: datetime | None = None
) -> dict[int, tuple[int, int]]:
    """Each key's usage (cents) today and this month, days of the account's timezone: {key id:
    (today, this month)}."""
    today = (now or utcnow()).astimezone(zone(timezone)).date()
    used: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for day, key_id, _, cents, _ in usage_sums(session, account_id, timezone, today.replace(day=1), today):
        used[key_id][1] += cents
        if day == today:
            used[key_id][0] += cents
    return {key_id: (today_cents, month) for key_id, (today_cents, month) in used.items()}
