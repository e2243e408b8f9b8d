"""Auto Recharge (seed 003): when a debit takes the balance to or below the threshold, the default
card is charged off-session for the chosen amount, and the credits land once the charge succeeds.

The form's values live in BillingSettings; the armed threshold is copied onto the metering row
(CreditBalance.recharge_threshold_cents, None while off), which the ledger reads on every debit.
A debit at or below it marks one recharge in flight and enqueues job "auto_recharge"
{account_id, seq} (ledger.start_recharge_if_due); `run_recharge` is that job. `settle` is the
bookkeeping once a recharge payment has ended, shared by the job and the Stripe webhook (through
payments.set_status, which runs this module's settle handler): conditional UPDATEs on recharge_seq let exactly one of them count it.
Callers commit, except that `run_recharge` commits its Payment before calling Stripe.

The monthly ceiling is checked in one place, when the job opens a recharge's Payment
(`_open_payment`): one recharge is in flight at a time (the ledger's conditional UPDATE on
recharge_in_flight), so the month's payments it sums cannot grow under it. A recharge that would
pass the ceiling charges nothing and pauses auto recharge until the next calendar month (UTC): the
threshold is disarmed on the metering row, so debits start no job, and job
"auto_recharge_resume" arms it again at the month's first midnight. Saving the form with a
ceiling the next recharge fits under ends the pause at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from app.config import get_settings
from app.errors import Conflict, DomainError, FormInvalid, ValidationFailed
from app.jobs.queue import enqueue
from app.models import BillingSettings, CreditBalance, Job, Payment, utcnow
from app.services import audit, ledger, live, payments, topups
from app.services.customers import account_of, stripe_customer_id
from app.services.email import email_billing_contacts
from app.services.money import format_usd, parse_dollars
from app.services.overview import billing_settings
from app.services.payment_methods import default_method, describe
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.timefmt import format_date, format_datetime

MAX_FAILURES = 3
MAX_THRESHOLD_CENTS = 500_000
THRESHOLD_MESSAGE = "Enter a threshold between $0 and $5000."
INVOICE_PRICED_MESSAGE = "Your account pays by invoice, so auto recharge is not available."
NO_CARD_MESSAGE = "Auto recharge charges your default card. Add a card on the Payment Methods page first."
NO_CARD_REASON = "Turned off because there was no default card to charge. Add a card, then turn auto recharge on again."
AUTHENTICATION_MESSAGE = payments.AUTHENTICATION_MESSAGE
SUGGESTED_THRESHOLD_CENTS = 2_000
MAX_CEILING_CENTS = 10_000_000
ENDED = ("succeeded", "failed", "canceled")


class NoDefaultCard(Conflict):
    """Auto recharge needs a default card; the page links to Payment Methods."""


@dataclass(frozen=True)
class RechargeSettings:
    enabled: bool
    threshold_cents: int
    amount_cents: int
    disabled_reason: str
    failures: int
    invoice_priced: bool
    default_card: str
    balance_cents: int
    in_flight: bool
    overage_line_cents: int
    ceiling_cents: int | None
    paused_reason: str


def minimum_amount_cents(threshold_cents: int, overage_line_cents: int) -> int:
    """The smallest recharge that lifts the balance above the threshold from any balance a
    recharge can start at: usage takes the balance at most down to minus the overage line, so
    the amount must be more than the threshold plus that line."""
    return threshold_cents + overage_line_cents + 1


def suggested_amount_cents(overage_line_cents: int) -> int:
    """What the form offers before anything is saved: $50, plus the overage line."""
    return 5_000 + overage_line_cents


def recharge_key(account_id: int, seq: int) -> str:
    """The job's dedupe key, the Payment's idempotency key and Stripe's idempotency key."""
    return f"auto_recharge:{account_id}:{seq}"


def month_start(now: datetime) -> datetime:
    """The first midnight (UTC) of `now`'s calendar month: the ceiling counts from there."""
    utc = now.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month_start(now: datetime) -> datetime:
    return month_start(month_start(now) + timedelta(days=32))


def month_recharged_cents(session: Session, account_id: int, now: datetime) -> int:
    """The automatic top-ups of `now`'s calendar month (UTC) that succeeded or are under way, less
    what was refunded of them (money given back is no longer a top-up)."""
    total = session.exec(
        select(func.coalesce(func.sum(Payment.amount_cents - Payment.refunded_cents), 0)).where(
            Payment.account_id == account_id,
            Payment.method == "auto_recharge",
            col(Payment.status).not_in(("failed", "canceled")),
            col(Payment.created_at) >= month_start(now),
            col(Payment.created_at) < next_month_start(now),
        )
    ).one()
    return int(total)


def over_ceiling(session: Session, settings: BillingSettings, now: datetime) -> bool:
    """Whether the next recharge would take this month's automatic top-ups past the ceiling."""
    ceiling = settings.auto_recharge_monthly_ceiling_cents
    if ceiling is None:
        return False
    return month_recharged_cents(session, settings.account_id, now) + settings.auto_recharge_amount_cents > ceiling


def paused(settings: BillingSettings, now: datetime | None = None) -> bool:
    until = settings.auto_recharge_paused_until
    return settings.auto_recharge_enabled and until is not None and until > (now or utcnow())


def paused_reason(settings: BillingSettings, now: datetime | None = None) -> str:
    """Why auto recharge is not topping up this month, "" when it is not paused."""
    if not paused(settings, now) or settings.auto_recharge_paused_until is None:
        return ""
    ceiling = format_usd(settings.auto_recharge_monthly_ceiling_cents or 0)
    resumes = format_date(settings.auto_recharge_paused_until.astimezone(UTC).date())
    return f"Paused: this month's automatic top-ups reached your {ceiling} ceiling; resumes on {resumes}."


def recharge_settings(session: Session, actor: Actor, now: datetime | None = None) -> RechargeSettings:
    """What the Auto Recharge page shows (the Overview shows the reasons too)."""
    require(actor, Permission.BILLING_VIEW)
    settings = billing_settings(session, actor.account_id)
    card = default_method(session, actor.account_id)
    row = session.get(CreditBalance, actor.account_id)
    account = account_of(session, actor.account_id)
    return RechargeSettings(
        enabled=settings.auto_recharge_enabled,
        threshold_cents=settings.auto_recharge_threshold_cents,
        amount_cents=settings.auto_recharge_amount_cents,
        disabled_reason=settings.auto_recharge_disabled_reason,
        failures=settings.auto_recharge_failures,
        invoice_priced=settings.invoice_priced,
        default_card=describe(card) if card else "",
        balance_cents=row.balance_cents if row else 0,
        in_flight=bool(row and row.recharge_in_flight),
        overage_line_cents=row.overage_credit_line_cents
        if row
        else get_plan(account.plan_code).overage_credit_line_cents,
        ceiling_cents=settings.auto_recharge_monthly_ceiling_cents,
        paused_reason=paused_reason(settings, now),
    )


def save_settings(
    session: Session,
    actor: Actor,
    enabled: bool,
    threshold_text: str,
    amount_text: str,
    ceiling_text: str = "",
    now: datetime | None = None,
) -> bool:
    """Store the form and arm (or disarm) the threshold on the metering row. Turned on at or below
    the threshold, a recharge starts at once; returns whether it did. Turning it off keeps the
    saved amounts. An empty ceiling is no ceiling; a pause ends when the next recharge fits under
    the saved ceiling (or auto recharge is turned off). Bad input raises FormInvalid with every
    field error and stores nothing."""
    require(actor, Permission.BILLING_MANAGE)
    now = now or utcnow()
    live.mark(session, actor.account_id)
    settings = billing_settings(session, actor.account_id)
    if settings.invoice_priced:
        raise Conflict(INVOICE_PRICED_MESSAGE)
    if enabled:
        line = ledger.ensure_credit_balance(session, actor.account_id).overage_credit_line_cents
        threshold_cents, amount_cents, ceiling_cents = _checked_amounts(threshold_text, amount_text, ceiling_text, line)
        if default_method(session, actor.account_id) is None:
            raise NoDefaultCard(NO_CARD_MESSAGE)
        settings.auto_recharge_threshold_cents = threshold_cents
        settings.auto_recharge_amount_cents = amount_cents
        settings.auto_recharge_monthly_ceiling_cents = ceiling_cents
        settings.auto_recharge_failures = 0
    settings.auto_recharge_enabled = enabled
    settings.auto_recharge_disabled_reason = ""
    if not enabled or not over_ceiling(session, settings, now):
        settings.auto_recharge_paused_until = None
    settings.updated_at = utcnow()
    session.add(settings)
    put_in_force(session, settings, now)
    audit.record(
        session,
        actor,
        "billing.auto_recharge",
        f"Turned auto recharge on: {format_usd(settings.auto_recharge_amount_cents)} when the balance reaches "
        f"{format_usd(settings.auto_recharge_threshold_cents)}{_ceiling_words(settings)}"
        if enabled
        else "Turned auto recharge off",
    )
    if not enabled:
        return False
    _release_if_stuck(session, actor.account_id)
    return ledger.start_recharge_if_due(session, actor.account_id)


def _ceiling_words(settings: BillingSettings) -> str:
    ceiling = settings.auto_recharge_monthly_ceiling_cents
    return f", at most {format_usd(ceiling)} a month" if ceiling is not None else ""


def _checked_amounts(
    threshold_text: str, amount_text: str, ceiling_text: str, overage_line_cents: int
) -> tuple[int, int, int | None]:
    errors: dict[str, str] = {}
    threshold_cents = amount_cents = 0
    try:
        threshold_cents = parse_dollars(threshold_text, "threshold")
        if threshold_cents > MAX_THRESHOLD_CENTS:
            errors["threshold"] = THRESHOLD_MESSAGE
    except DomainError as exc:
        errors["threshold"] = exc.message
    try:
        amount_cents = parse_dollars(amount_text, "amount")
        if not topups.MIN_TOPUP_CENTS <= amount_cents <= topups.MAX_TOPUP_CENTS:
            errors["amount"] = topups.AMOUNT_MESSAGE
    except DomainError as exc:
        errors["amount"] = exc.message
    minimum = minimum_amount_cents(threshold_cents, overage_line_cents)
    if not errors and amount_cents < minimum:
        errors["amount"] = _too_small_message(threshold_cents, overage_line_cents)
    ceiling_cents = None
    if (ceiling_text or "").strip():
        try:
            ceiling_cents = parse_dollars(ceiling_text, "ceiling")
            # Below one recharge, auto recharge could never top up at all. Measured against a
            # valid amount only: a bad amount has its own error.
            if "amount" not in errors and not amount_cents <= ceiling_cents <= MAX_CEILING_CENTS:
                errors["ceiling"] = (
                    f"Enter a ceiling from the amount to add ({format_usd(amount_cents)}) to "
                    f"{format_usd(MAX_CEILING_CENTS)}, or leave it empty for no ceiling."
                )
        except DomainError as exc:
            errors["ceiling"] = exc.message
    if errors:
        raise FormInvalid(errors)
    return threshold_cents, amount_cents, ceiling_cents


def _too_small_message(threshold_cents: int, overage_line_cents: int) -> str:
    above = format_usd(threshold_cents + overage_line_cents)
    message = (
        f"Enter an amount above {above}, so that one recharge lifts your balance above the "
        f"{format_usd(threshold_cents)} threshold even from {format_usd(-overage_line_cents)}, the lowest balance "
        "usage can reach."
    )
    if minimum_amount_cents(threshold_cents, overage_line_cents) > topups.MAX_TOPUP_CENTS:
        message += f" A recharge is at most {format_usd(topups.MAX_TOPUP_CENTS)}, so lower the threshold."
    return message


def put_in_force(session: Session, settings: BillingSettings, now: datetime | None = None) -> None:
    """Copy the armed threshold onto the metering row (none while off or paused); only that
    column, so a concurrent debit's balance is untouched."""
    ledger.ensure_credit_balance(session, settings.account_id)
    armed = settings.auto_recharge_enabled and not paused(settings, now)
    session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == settings.account_id)
        .values(
            recharge_threshold_cents=settings.auto_recharge_threshold_cents if armed else None,
            updated_at=utcnow(),
        )
    )
    session.flush()


def _release_if_stuck(session: Session, account_id: int) -> None:
    """A recharge whose job failed for good (Stripe unreachable through all its attempts) would
    hold the in-flight flag forever; saving the form lets the next debit start a new one."""
    row = session.get(CreditBalance, account_id)
    if row is None or not row.recharge_in_flight:
        return
    key = recharge_key(account_id, row.recharge_seq)
    job_status = session.exec(select(Job.status).where(Job.dedupe_key == key)).first()
    if job_status == "failed":
        _stand_down(session, account_id, row.recharge_seq)


def run_recharge(session: Session, account_id: int, seq: int, now: datetime | None = None) -> None:
    """Job "auto_recharge": charge the default card once for recharge `seq` and record how it
    ended. Safe to run again at any point: the Payment is committed before Stripe is called, so a
    rerun finds it, and an intent Stripe already has is found rather than made twice."""
    now = now or utcnow()
    key = recharge_key(account_id, seq)
    payment = payments.by_key(session, account_id, key)
    if payment is None:
        payment = _open_payment(session, account_id, seq, key, now)
        if payment is None:
            return
    if payment.status in ENDED:
        return
    payments.charge_off_session(session, payment, purpose="auto_recharge", now=now)


def _open_payment(session: Session, account_id: int, seq: int, key: str, now: datetime) -> Payment | None:
    """A new Payment for recharge `seq`; None when there is nothing to charge."""
    row = session.get(CreditBalance, account_id, populate_existing=True)
    if row is None or not row.recharge_in_flight or row.recharge_seq != seq:
        return None  # settled already, or a later recharge owns the flag
    settings = session.get(BillingSettings, account_id, populate_existing=True)
    if (
        settings is None
        or not settings.auto_recharge_enabled
        or settings.invoice_priced
        or row.recharge_threshold_cents is None
        or row.balance_cents - row.held_cents > row.recharge_threshold_cents
    ):
        # Turned off, or topped up some other way, since the recharge started.
        _stand_down(session, account_id, seq)
        return None
    if over_ceiling(session, settings, now):
        _pause(session, settings, seq, now)
        return None
    card = default_method(session, account_id)
    if card is None or not stripe_customer_id(session, account_id):
        # Turned off rather than left armed: else every further debit would start a job that
        # finds no card.
        _disable(session, account_id, NO_CARD_REASON)
        _email_disabled(session, account_id, NO_CARD_REASON)
        return None
    try:
        topups.check_monthly_credits(session, account_id, settings.auto_recharge_amount_cents)
    except ValidationFailed as refused:
        # The plan's usage credits a month hold for recharges too; turned off (not left armed,
        # which would start a job at every further debit), with the limit named.
        reason = f"Turned off: this recharge of {format_usd(settings.auto_recharge_amount_cents)} was not made. "
        _disable(session, account_id, reason + refused.message)
        _email_disabled(session, account_id, reason + refused.message)
        return None
    payment, _ = payments.open_payment(
        session,
        account_id=account_id,
        amount_cents=settings.auto_recharge_amount_cents,
        method="auto_recharge",
        idempotency_key=key,
        payment_method_id=card.stripe_payment_method_id,
    )
    return payment


@payments.on_settled("auto_recharge")
def _settled(session: Session, payment: Payment, now: datetime) -> None:
    """A succeeded recharge becomes credits once (keyed by its PaymentIntent); either way the
    recharge's bookkeeping follows (`settle`), whether the job or the webhook saw it first."""
    if payment.status == "succeeded":
        pi_id = payment.stripe_payment_intent_id
        topups.credit(session, payment, f"Stripe Payment Intent {pi_id} via Auto Recharge call.", f"stripe:pi:{pi_id}")
    settle(session, payment, now)


def settle(session: Session, payment: Payment, now: datetime | None = None) -> None:
    """Bookkeeping after an auto-recharge payment ended, whoever saw it first (the job or Stripe's
    webhook): success clears the in-flight flag and the failure count; a failure is counted once
    and retried later with the next seq, or, at the third in a row, turns auto recharge off. The
    billing contacts are told of each failure."""
    account_id = payment.account_id
    seq = _seq_of(payment)
    if seq is None:
        return
    if payment.status == "succeeded":
        session.exec(
            update(CreditBalance)
            .where(col(CreditBalance.account_id) == account_id, col(CreditBalance.recharge_seq) == seq)
            .values(recharge_in_flight=False)
        )
        session.exec(
            update(BillingSettings)
            .where(col(BillingSettings.account_id) == account_id)
            .values(auto_recharge_failures=0)
        )
        session.flush()
        return
    if payment.status not in ("failed", "canceled"):
        return
    # Moving on to the next seq is the claim: a second report of the same failure finds the seq
    # moved and counts nothing.
    claimed = session.exec(
        update(CreditBalance)
        .where(
            col(CreditBalance.account_id) == account_id,
            col(CreditBalance.recharge_seq) == seq,
            col(CreditBalance.recharge_in_flight) == True,  # noqa: E712
        )
        .values(recharge_seq=CreditBalance.recharge_seq + 1)
        .returning(col(CreditBalance.recharge_seq))
    ).one_or_none()
    if claimed is None:
        return
    failures = session.exec(
        update(BillingSettings)
        .where(col(BillingSettings.account_id) == account_id)
        .values(auto_recharge_failures=BillingSettings.auto_recharge_failures + 1)
        .returning(col(BillingSettings.auto_recharge_failures))
    ).one()[0]
    if failures >= MAX_FAILURES:
        reason = (
            f"Turned off after {MAX_FAILURES} failed charges in a row. Last error: "
            f"{payment.failure_message.rstrip('.')}. Check your default card, then turn auto recharge on again."
        )
        _disable(session, account_id, reason)
        _email_disabled(session, account_id, reason)
        return
    retry_at = (now or utcnow()) + timedelta(minutes=get_settings().auto_recharge_retry_minutes)
    next_seq = claimed[0]
    enqueue(
        session,
        "auto_recharge",
        {"account_id": account_id, "seq": next_seq},
        dedupe_key=recharge_key(account_id, next_seq),
        run_at=retry_at,
    )
    if payment.status == "canceled":
        _email_authentication(session, payment, retry_at)
    else:
        _email_failed(session, payment, failures, retry_at)


def _seq_of(payment: Payment) -> int | None:
    """The recharge number in the payment's key; None for a payment the job did not make."""
    kind, account, seq = (payment.idempotency_key.split(":") + ["", ""])[:3]
    if (kind, account) != ("auto_recharge", str(payment.account_id)) or not seq.isdigit():
        return None
    return int(seq)


def _stand_down(session: Session, account_id: int, seq: int) -> None:
    session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == account_id, col(CreditBalance.recharge_seq) == seq)
        .values(recharge_in_flight=False)
    )
    session.flush()


def _pause(session: Session, settings: BillingSettings, seq: int, now: datetime) -> None:
    """Charge nothing until the next month: disarm the threshold, and arm it again then (job
    "auto_recharge_resume"). The contacts hear of it once a month: setting the month's day is
    the claim."""
    account_id = settings.account_id
    live.mark(session, account_id)
    resumes_at = next_month_start(now)
    session.exec(
        update(BillingSettings)
        .where(col(BillingSettings.account_id) == account_id)
        .values(auto_recharge_paused_until=resumes_at, updated_at=utcnow())
    )
    session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == account_id, col(CreditBalance.recharge_seq) == seq)
        .values(recharge_threshold_cents=None, recharge_in_flight=False)
    )
    enqueue(
        session,
        "auto_recharge_resume",
        {"account_id": account_id},
        dedupe_key=f"auto_recharge_resume:{account_id}:{resumes_at:%Y-%m}",
        run_at=resumes_at,
    )
    month: date = month_start(now).date()
    claimed = session.exec(
        update(BillingSettings)
        .where(
            col(BillingSettings.account_id) == account_id,
            col(BillingSettings.auto_recharge_ceiling_emailed_for).is_distinct_from(month),
        )
        .values(auto_recharge_ceiling_emailed_for=month)
        .returning(col(BillingSettings.account_id))
    ).one_or_none()
    session.flush()
    if claimed is not None:
        session.refresh(settings)
        _email_paused(session, settings, now)


def resume(session: Session, account_id: int, now: datetime | None = None) -> bool:
    """Job "auto_recharge_resume": at the month's start, end a pause that has run out, arm the
    threshold again and start a recharge if the balance is already at or below it. Returns
    whether one started; a pause still running (or none) is left as it is."""
    now = now or utcnow()
    settings = session.get(BillingSettings, account_id, populate_existing=True)
    until = settings.auto_recharge_paused_until if settings else None
    if settings is None or until is None or until > now:
        return False
    live.mark(session, account_id)
    settings.auto_recharge_paused_until = None
    session.add(settings)
    put_in_force(session, settings, now)
    return settings.auto_recharge_enabled and ledger.start_recharge_if_due(session, account_id)


def _disable(session: Session, account_id: int, reason: str) -> None:
    live.mark(session, account_id)
    session.exec(
        update(BillingSettings)
        .where(col(BillingSettings.account_id) == account_id)
        .values(auto_recharge_enabled=False, auto_recharge_disabled_reason=reason[:500], updated_at=utcnow())
    )
    session.exec(
        update(CreditBalance)
        .where(col(CreditBalance.account_id) == account_id)
        .values(recharge_threshold_cents=None, recharge_in_flight=False)
    )
    session.flush()


def _email_failed(session: Session, payment: Payment, failures: int, retry_at: datetime) -> None:
    account = account_of(session, payment.account_id)
    amount = format_usd(payment.amount_cents)
    email_billing_contacts(
        session,
        payment.account_id,
        f"Auto recharge of {amount} failed",
        f"Hello,\n\n"
        f"We could not charge your default card {amount} for the auto recharge of {account.name} "
        f"({account.public_id}): {payment.failure_message}\n\n"
        f"We will try again at {format_datetime(retry_at, account.timezone)}. After {MAX_FAILURES} failed "
        f"charges in a row ({failures} so far), auto recharge turns itself off.\n\n"
        f"Check your cards on the Payment Methods page: {get_settings().public_url}/billing/payment-methods\n",
    )


def _email_authentication(session: Session, payment: Payment, retry_at: datetime) -> None:
    account = account_of(session, payment.account_id)
    amount = format_usd(payment.amount_cents)
    email_billing_contacts(
        session,
        payment.account_id,
        f"Auto recharge of {amount} needs you to pay",
        f"Hello,\n\n"
        f"Your bank asked to authenticate the {amount} auto recharge of {account.name} ({account.public_id}), "
        f"which cannot be done while you are away, so we cancelled that charge and nothing was taken.\n\n"
        f"Add the credits yourself, where your bank can ask you to confirm: "
        f"{get_settings().public_url}/billing/add-usage-credits\n\n"
        f"We will try the auto recharge again at {format_datetime(retry_at, account.timezone)}; after "
        f"{MAX_FAILURES} charges in a row that do not go through, auto recharge turns itself off.\n",
    )


def _email_paused(session: Session, settings: BillingSettings, now: datetime) -> None:
    account = account_of(session, settings.account_id)
    email_billing_contacts(
        session,
        settings.account_id,
        "Auto recharge paused for this month",
        f"Hello,\n\n"
        f"The next auto recharge of {account.name} ({account.public_id}), "
        f"{format_usd(settings.auto_recharge_amount_cents)}, would take this month's automatic top-ups past your "
        f"ceiling of {format_usd(settings.auto_recharge_monthly_ceiling_cents or 0)}, so nothing was charged. "
        f"{paused_reason(settings, now)}\n\n"
        f"Add credits yourself on the Add Usage Credits page: {get_settings().public_url}/billing/add-usage-credits\n\n"
        f"Raise or clear the ceiling on the Auto Recharge page: {get_settings().public_url}/billing/auto-recharge\n",
    )


def _email_disabled(session: Session, account_id: int, reason: str) -> None:
    account = account_of(session, account_id)
    email_billing_contacts(
        session,
        account_id,
        "Auto recharge turned off",
        f"Hello,\n\n"
        f"Auto recharge of {account.name} ({account.public_id}) is now off. {reason}\n\n"
        f"Your balance is no longer topped up automatically. Add credits yourself on the Add Usage Credits "
        f"page: {get_settings().public_url}/billing/add-usage-credits\n\n"
        f"Turn auto recharge on again on the Auto Recharge page: {get_settings().public_url}/billing/auto-recharge\n",
    )
