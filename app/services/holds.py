"""Holds for long-running calls, as the metering API answers them: POST /api/v1/holds reserves
credits (refused as a usage debit of the amount would be), capture debits up to the held amount
and gives back the rest, release gives it all back, and an expired hold gives itself back (job
"hold_expiry"). The money rules are the ledger's (`ledger.place_hold`, `ledger.close_hold`).

Idempotent: a hold request with an Idempotency-Key is stored with its answer as a usage call's
is (MeteringRequest), and a capture or release sent again gets the answer that closed the hold
(`closing_json`), so a retry after a lost answer changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.errors import DomainError, NotFound, ValidationFailed
from app.models import CreditHold, utcnow
from app.services import api_keys, ledger, metering
from app.services.api_keys import InvalidApiKey
from app.services.ledger import BalanceAfter, ClosedHold
from app.services.metering import Answer, error_answer

MAX_TTL_SECONDS = 86_400
DEFAULT_TTL_SECONDS = 900


class HoldNotFound(NotFound):
    code = "hold_not_found"

    def __init__(self):
        super().__init__("No such hold for this account.")


class HoldClosed(DomainError):
    """The hold is no longer open: captured, released or expired (code hold_expired)."""

    status_code = 409
    code = "hold_closed"

    def __init__(self, hold: CreditHold):
        if hold.status == "expired":
            self.code = "hold_expired"
        super().__init__(f"This hold is {hold.status}: it no longer holds credits.")


def check_hold(amount_cents: int, ttl_seconds: int, description: str, idempotency_key: str | None) -> None:
    """The API's models check the same; this guards other callers."""
    metering.check_call(amount_cents, description, idempotency_key)
    if type(ttl_seconds) is not int or not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValidationFailed(f"ttl_seconds must be a whole number from 1 to {MAX_TTL_SECONDS}.")


def place(
    session: Session,
    *,
    api_key: str | None,
    amount_cents: int,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    description: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Reserve credits for the key's account until now + ttl_seconds: 201 with the hold, or the
    refusal a usage debit of the amount would get."""
    check_hold(amount_cents, ttl_seconds, description, idempotency_key)
    now = now or utcnow()
    try:
        key = api_keys.authenticate(session, api_key, now)
    except InvalidApiKey as exc:
        return error_answer(exc)
    body_fingerprint = metering.body_fingerprint(
        {"hold": amount_cents, "ttl_seconds": ttl_seconds, "description": description}
    )
    if (
        idempotency_key is not None
        and (stored := metering.stored_answer(session, key.account_id, idempotency_key)) is not None
    ):
        return metering.replay(stored, body_fingerprint)
    try:
        with session.begin_nested():
            hold, after = ledger.place_hold(
                session,
                account_id=key.account_id,
                amount_cents=amount_cents,
                expires_at=now + timedelta(seconds=ttl_seconds),
                description=metering.shown_description(description, key.name),
                api_key_id=key.id,
                now=now,
            )
            answer = Answer(201, _hold_body(hold, after))
            if idempotency_key is not None:
                metering.remember(session, key.account_id, idempotency_key, body_fingerprint, answer, now)
    except (
        ledger.AccountSuspended,
        ledger.InsufficientCredits,
        ledger.DailyBudgetExceeded,
        ledger.DailyRequestLimitExceeded,
        ledger.KeyBudgetExceeded,
    ) as refusal:
        return error_answer(refusal)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key placed its hold first; ours is undone.
        stored = metering.stored_answer(session, key.account_id, idempotency_key or "")
        if stored is None:
            raise
        return metering.replay(stored, body_fingerprint)
    return answer


def capture(
    session: Session, *, api_key: str | None, hold_id: str, amount_cents: int, now: datetime | None = None
) -> Answer:
    """Debit `amount_cents` (at most the held amount) as one usage entry and give back the rest.
    The same capture again answers as the first did; anything else on a closed hold is 409."""
    metering.check_call(amount_cents, "", None)
    return _close(session, api_key, hold_id, "captured", amount_cents, now or utcnow())


def release(session: Session, *, api_key: str | None, hold_id: str, now: datetime | None = None) -> Answer:
    """Give back everything the hold reserved; a release sent again answers as the first did."""
    return _close(session, api_key, hold_id, "released", None, now or utcnow())


def expire(session: Session, account_id: int, hold_id: int, now: datetime | None = None) -> None:
    """Job "hold_expiry": release the hold if it is still open at its expiry (else nothing)."""
    ledger.close_hold(session, account_id, hold_id, "expired", now=now or utcnow())


def _close(
    session: Session, api_key: str | None, hold_id: str, status: str, amount_cents: int | None, now: datetime
) -> Answer:
    try:
        key = api_keys.authenticate(session, api_key, now)
    except InvalidApiKey as exc:
        return error_answer(exc)
    hold = session.exec(
        select(CreditHold).where(CreditHold.account_id == key.account_id, CreditHold.public_id == hold_id)
    ).first()
    if hold is None:
        return error_answer(HoldNotFound())
    if amount_cents is not None and amount_cents > hold.amount_cents:
        return error_answer(
            ValidationFailed(f"amount_cents: at most the held amount, {hold.amount_cents} cents, can be captured.")
        )
    assert hold.id is not None
    closed = ledger.close_hold(
        session,
        hold.account_id,
        hold.id,
        status,
        captured_cents=amount_cents or 0,
        description=hold.description,
        now=now,
    )
    if closed is None:
        # Another request or the expiry closed it first; or its time is up and this gives it back.
        ledger.close_hold(session, hold.account_id, hold.id, "expired", now=now)
        session.refresh(hold)
        if (
            hold.status == status
            and hold.closing_json
            and (amount_cents is None or amount_cents == hold.captured_cents)
        ):
            return Answer(200, json.loads(hold.closing_json), replayed=True)
        return error_answer(HoldClosed(hold))
    answer = Answer(200, _closing_body(closed))
    closed.hold.closing_json = json.dumps(answer.body)
    session.add(closed.hold)
    session.flush()
    return answer


def _hold_body(hold: CreditHold, after: BalanceAfter) -> dict:
    return {
        "hold_id": hold.public_id,
        "status": hold.status,
        "amount_cents": hold.amount_cents,
        "expires_at": _iso(hold.expires_at),
        "balance_cents": after.balance_cents,
        "held_cents": after.held_cents,
        "available_cents": after.available_cents,
    }


def _closing_body(closed: ClosedHold) -> dict:
    hold, after = closed.hold, closed.after
    return {
        "hold_id": hold.public_id,
        "status": hold.status,
        "captured_cents": hold.captured_cents,
        "released_cents": hold.amount_cents - hold.captured_cents,
        "entry_id": closed.entry.public_id if closed.entry is not None else None,
        "balance_cents": after.balance_cents,
        "held_cents": after.held_cents,
        "available_cents": after.available_cents,
        "used_today_cents": after.used_today_cents,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
