"""Discover products (seed 001: "check out what products are available now, compare pricing
plans, and sign up for more product as your business grows"). The catalogue lives in code, like
the plans (app/services/product_catalogue.py). Every account has the core product; others are
signed up for on a pricing plan of their own, switched to another plan or cancelled, like the
account's plan (`change`): the prorated difference for the rest of the month is charged to the
card at once (`payments.open_and_charge`) or credited back as far as it was paid; from then on
the monthly period close bills it in advance (`product_catalogue.monthly_charges`). How many
products an account may have is a plan limit ("products")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import Conflict, ValidationFailed
from app.models import AccountProduct, Invoice, InvoiceLine, LedgerEntry, Payment, PaymentMethod, utcnow
from app.services import audit, invoices, ledger, payments
from app.services.customers import account_of
from app.services.invoices import billing_period
from app.services.money import format_usd
from app.services.overview import billing_settings
from app.services.payment_methods import default_method, label
from app.services.payment_outcome import PaymentOutcome
from app.services.permissions import Actor, Permission, require
from app.services.plans import get_plan
from app.services.product_catalogue import (
    CORE_PLAN,
    PRODUCTS,
    Product,
    ProductPlan,
    get_product,
    plan_of,
    product_count,
    signed_up,
)
from app.services.roles import lock_account
from app.services.subscription import CardRequired, prorate

# The plan code that cancels a product.
CANCEL = ""


@dataclass(frozen=True)
class PlanOffer:
    code: str
    name: str
    price: str
    features: tuple[str, ...]
    current: bool


@dataclass(frozen=True)
class ProductCard:
    code: str
    name: str
    description: str
    has_it: bool
    plans: tuple[PlanOffer, ...]
    # Part of every account: its plan is not changed nor cancelled here.
    core: bool = False


def catalogue(session: Session, actor: Actor) -> list[ProductCard]:
    require(actor, Permission.PLAN_MANAGE)
    mine = signed_up(session, actor.account_id)
    cards = []
    for product in PRODUCTS:
        current = CORE_PLAN if product.core else (mine[product.code].plan_code if product.code in mine else "")
        cards.append(
            ProductCard(
                code=product.code,
                name=product.name,
                description=product.description,
                has_it=product.core or product.code in mine,
                plans=tuple(
                    PlanOffer(
                        plan.code,
                        plan.name,
                        f"{format_usd(plan.monthly_cents)} per month" if plan.monthly_cents else "Free",
                        plan.features,
                        plan.code == current,
                    )
                    for plan in product.plans
                ),
                core=product.core,
            )
        )
    return cards


@dataclass(frozen=True)
class ProductQuote:
    title: str
    # Positive: charged now (invoiced, for an invoice-priced account); negative: the prorated
    # rest of the period given back, of which `credited_cents` (what was paid) is credited.
    amount_cents: int
    credited_cents: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class ProductResult(PaymentOutcome):
    """status "applied" when the change took effect; a card payment's status otherwise."""

    notice: str = ""


@dataclass(frozen=True)
class _Move:
    product: Product
    old: ProductPlan | None
    new: ProductPlan | None
    amount_cents: int
    credited_cents: int
    card: PaymentMethod | None
    invoice_priced: bool

    @property
    def what(self) -> str:
        if self.old is None and self.new is not None:
            return f"Sign up for {self.product.name} {self.new.name}"
        if self.new is None:
            return f"Cancel {self.product.name}"
        return f"Change {self.product.name} to {self.new.name}"


def quote(
    session: Session, actor: Actor, product_code: str, plan_code: str, now: datetime | None = None
) -> ProductQuote:
    """What signing up, changing the product's plan or cancelling it (`plan_code` CANCEL) costs
    now: the monthly difference for the rest of this month, prorated by day as plan changes are."""
    require(actor, Permission.PLAN_MANAGE)
    move = _move(session, actor, product_code, plan_code, now or utcnow())
    lines: list[str] = []
    if move.new is not None:
        lines.append(
            f"{format_usd(move.new.monthly_cents)} per month, billed with your monthly invoice."
            if move.new.monthly_cents
            else f"{move.product.name} {move.new.name} is free. It starts at once."
        )
    else:
        lines.append(f"{move.product.name} stops at once.")
    if move.amount_cents > 0:
        lines.append(
            f"Invoiced now for the rest of this month: {format_usd(move.amount_cents)}. Pay it on the Invoices page."
            if move.invoice_priced
            else f"Charged now to {label(move.card)} for the rest of this month: {format_usd(move.amount_cents)}."
            if move.card is not None
            else ""
        )
    elif move.amount_cents < 0:
        lines.append(f"Credited to your balance now: {format_usd(move.credited_cents)}.")
        if move.credited_cents < -move.amount_cents:
            lines.append("Only time you have paid for is credited.")
    return ProductQuote(move.what, move.amount_cents, move.credited_cents, tuple(line for line in lines if line))


def _move(session: Session, actor: Actor, product_code: str, plan_code: str, now: datetime) -> _Move:
    product = get_product(product_code)
    if product.core:
        raise Conflict(f"{product.name} is part of every account.")
    row = signed_up(session, actor.account_id).get(product.code)
    old = plan_of(product, row.plan_code) if row is not None else None
    new = plan_of(product, plan_code) if plan_code != CANCEL else None
    if old is None and new is None:
        raise Conflict(f"You do not have {product.name}.")
    if old is not None and new is not None and old.code == new.code:
        raise Conflict(f"You are already on {product.name} {new.name}.")
    if old is None:
        account_plan = get_plan(account_of(session, actor.account_id).plan_code)
        limit = account_plan.limit("products")
        if limit is not None and product_count(session, actor.account_id) >= limit:
            raise Conflict(
                f"Account limit reached: your {account_plan.name} plan includes {limit} products. "
                "Upgrade your plan to add more."
            )
    amount = prorate(old.monthly_cents if old else 0, new.monthly_cents if new else 0, now).amount_cents
    invoice_priced = billing_settings(session, actor.account_id).invoice_priced
    card = default_method(session, actor.account_id)
    if amount > 0 and not invoice_priced and card is None:
        raise CardRequired("A paid product needs a payment method on file. Add one on the Payment Methods page.")
    credited = min(-amount, _refundable(session, actor.account_id, product, now)) if amount < 0 else 0
    return _Move(product, old, new, amount, credited, card, invoice_priced)


def _refundable(session: Session, account_id: int, product: Product, now: datetime) -> int:
    """What was paid for the product this period and not given back yet, which caps a credit:
    its paid sign-up and upgrade invoices of the period, its line of the period's paid renewal,
    less what its downgrades and cancellation credited."""
    start = datetime.combine(billing_period(now)[0], time(), tzinfo=UTC)
    invoiced = session.exec(
        select(Invoice).where(
            Invoice.account_id == account_id,
            Invoice.status == "paid",
            col(Invoice.issued_at) >= start,
            or_(
                col(Invoice.idempotency_key).startswith(f"product:{account_id}:{product.code}:"),
                (col(Invoice.source) == "period_close") & (Invoice.period_start == start.date()),
            ),
        )
    ).all()
    paid = 0
    for invoice in invoiced:
        if invoice.source == "product":
            paid += invoice.total_cents
        else:
            paid += sum(
                line.amount_cents
                for line in session.exec(
                    select(InvoiceLine).where(
                        InvoiceLine.account_id == account_id, InvoiceLine.invoice_id == invoice.id
                    )
                )
                if line.description.startswith(f"{product.name} ")
            )
    credited = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.account_id == account_id,
            col(LedgerEntry.idempotency_key).startswith(f"product:{account_id}:{product.code}:"),
            col(LedgerEntry.created_at) >= start,
        )
    ).one()
    return max(paid - int(credited), 0)


def change(
    session: Session,
    actor: Actor,
    product_code: str,
    plan_code: str,
    *,
    request_key: str,
    expected_amount_cents: int | None = None,
    now: datetime | None = None,
) -> ProductResult:
    """Sign up for a product, change its plan or cancel it (`plan_code` CANCEL), now, as plan
    changes are: a positive prorated amount is charged at once to the default card
    (`payments.open_and_charge`, with an invoice the payment marks paid; an invoice-priced account
    gets the invoice to pay), and a declined card changes nothing; a negative one credits the
    balance with what was paid and not given back. The account row is locked, so two changes
    cannot both pass the product limit; a replayed request (the same key) returns the first
    result and charges nothing more."""
    require(actor, Permission.PLAN_MANAGE)
    if not request_key:
        raise ValidationFailed("A request key is required.")
    now = now or utcnow()
    lock_account(session, actor.account_id)
    product = get_product(product_code)
    key = f"product:{actor.account_id}:{product.code}:{request_key}"
    if (replayed := payments.by_key(session, actor.account_id, key)) is not None:
        # Asked again after 3-D Secure (or a repeated click): how the charge ended. A failed one
        # changes nothing, as a decline does.
        secret = payments.refresh(session, replayed)
        if replayed.status in ("failed", "canceled") and _undo_unpaid(session, actor.account_id, product, replayed):
            audit.record(session, actor, "plan.product", f"{product.name}: not authenticated, nothing changed")
        return _charged(session, replayed, secret, _active(session, actor.account_id, product))
    earlier = select(LedgerEntry).where(LedgerEntry.account_id == actor.account_id, LedgerEntry.idempotency_key == key)
    if session.exec(earlier).first() is not None:
        return ProductResult(status="applied", amount_cents=0, notice="This change was made already.")
    move = _move(session, actor, product_code, plan_code, now)
    if expected_amount_cents is not None and expected_amount_cents != move.amount_cents:
        raise ValidationFailed(
            "The amount has changed since you opened this confirmation. Review it and confirm again."
        )
    _set_plan(session, actor.account_id, move, now)
    if move.amount_cents > 0:
        invoice, _ = invoices.issue_invoice(
            session,
            actor.account_id,
            source="product",
            lines=[invoices.LineItem(f"{_line(move)}, {_rest_of_month(now)}", move.amount_cents)],
            idempotency_key=key,
            status="open",
            due_at=invoices.due_date(session, actor.account_id, now),
            now=now,
        )
        if (row := signed_up(session, actor.account_id).get(product.code)) is not None:
            row.invoice_public_id = invoice.public_id
            row.previous_plan_code = move.old.code if move.old else ""
            session.add(row)
        if move.invoice_priced or move.card is None:
            audit.record(session, actor, "plan.product", _summary(move))
            return ProductResult(
                status="applied",
                amount_cents=move.amount_cents,
                notice=f"{_done(move)} The invoice for the rest of this month is on the Invoices page.",
            )
        payment, secret = payments.open_and_charge(
            session, invoice, move.amount_cents, card=move.card, user_id=actor.user_id, idempotency_key=key
        )
        if payment.status == "failed":
            _undo(session, actor.account_id, move, invoice.id)
        audit.record(
            session,
            actor,
            "plan.product",
            f"{_summary(move)}: {'declined, nothing changed' if payment.status == 'failed' else payment.status}",
        )
        return _charged(session, payment, secret, _done(move))
    audit.record(session, actor, "plan.product", _summary(move))
    if move.credited_cents:
        ledger.credit(
            session,
            account_id=actor.account_id,
            amount_cents=move.credited_cents,
            source="plan_change",
            description=f"{_line(move)}: the rest of the billing period",
            idempotency_key=key,
            now=now,
        )
    credited = (
        f" {format_usd(move.credited_cents)} was credited to your balance; it is listed in Balance History."
        if move.credited_cents
        else ""
    )
    return ProductResult(status="applied", amount_cents=move.amount_cents, notice=_done(move) + credited)


def _set_plan(session: Session, account_id: int, move: _Move, now: datetime) -> None:
    row = signed_up(session, account_id).get(move.product.code)
    if move.new is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        try:
            with session.begin_nested():
                session.add(
                    AccountProduct(
                        account_id=account_id, product_code=move.product.code, plan_code=move.new.code, started_at=now
                    )
                )
        except IntegrityError:
            raise Conflict(f"You already have {move.product.name}.") from None
    else:
        row.plan_code = move.new.code
        session.add(row)
    session.flush()


def _undo(session: Session, account_id: int, move: _Move, invoice_id: int | None) -> None:
    """The card was declined: the product is as it was and the invoice is void."""
    row = signed_up(session, account_id).get(move.product.code)
    if move.old is None:
        if row is not None:
            session.delete(row)
    elif row is not None:
        row.plan_code = move.old.code
        session.add(row)
    invoice = session.get(Invoice, (account_id, invoice_id))
    if invoice is not None and invoice.status == "open":
        invoice.status = "void"
        session.add(invoice)
    session.flush()


def _undo_unpaid(session: Session, account_id: int, product: Product, payment: Payment) -> bool:
    """The change's charge failed after 3-D Secure: undone as a decline is (`_undo`), once, and
    only while the product is still as that change left it."""
    invoice = session.get(Invoice, (payment.account_id, payment.invoice_id)) if payment.invoice_id is not None else None
    row = signed_up(session, account_id).get(product.code)
    if invoice is None or invoice.status != "open" or row is None or row.invoice_public_id != invoice.public_id:
        return False
    old = plan_of(product, row.previous_plan_code) if row.previous_plan_code else None
    _undo(session, account_id, _Move(product, old, None, 0, 0, None, False), invoice.id)
    return True


def _active(session: Session, account_id: int, product: Product) -> str:
    row = signed_up(session, account_id).get(product.code)
    return f"{product.name} is active on {plan_of(product, row.plan_code).name}." if row is not None else ""


def _charged(session: Session, payment: Payment, secret: str, done: str = "") -> ProductResult:
    result = payments.outcome(payment, secret)
    if payment.status == "succeeded":
        notice = (done + " " if done else "") + (
            f"{format_usd(payment.amount_cents)} was charged to your card; the paid invoice is on the Invoices page."
        )
    elif payment.status == "failed":
        notice = ""
    else:
        notice = "Your payment is not finished yet: the invoice is on the Invoices page, where you can pay it."
    return ProductResult(**result, notice=notice)


def _line(move: _Move) -> str:
    if move.old is None and move.new is not None:
        return f"{move.product.name} {move.new.name}"
    if move.new is None:
        return f"{move.product.name} {move.old.name if move.old else ''} cancelled"
    return f"{move.product.name}: {move.old.name if move.old else ''} to {move.new.name}"


def _done(move: _Move) -> str:
    if move.old is None and move.new is not None:
        return f"You signed up for {move.product.name}."
    if move.new is None:
        return f"You cancelled {move.product.name}."
    return f"{move.product.name} is now on {move.new.name}."


def _summary(move: _Move) -> str:
    if move.amount_cents > 0:
        money = f"{format_usd(move.amount_cents)} " + ("invoiced" if move.invoice_priced else "charged")
    elif move.amount_cents < 0:
        money = f"{format_usd(move.credited_cents)} credited"
    else:
        money = "free"
    verb = "Signed up for" if move.old is None else ("Cancelled" if move.new is None else "Changed to")
    plan = f" {move.new.name}" if move.new is not None else ""
    return f"{verb} {move.product.name}{plan} ({money})"


def _rest_of_month(now: datetime) -> str:
    return invoices.period_label(now.astimezone(UTC).date(), invoices.period_end_after(now))
