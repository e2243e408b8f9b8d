"""Plans and seats (seeds 000, 001): the plan catalogue, the current subscription, and changing
the plan or the number of seats.

Billing periods are calendar months in UTC: the periods for which the invoices' period close
bills each paid plan in advance (seat price × seats, `invoices.close_period`). A change takes
effect at once and is settled for the rest of the current period, prorated by days:

    amount = (new monthly total − old monthly total) × days left ÷ days in the period

A monthly total is the seat price × seats. The days left count the UTC day of the change, so a
change on the 1st settles the whole month and one on the last day a single day. What is rounded
(towards zero, to whole cents) is the period's running total, not each change: a change settles
the period's exact total after it, rounded, minus the same before it. So changes made one at a
time settle to the cent what one change to the same end would, and a change and its reverse on
the same day cancel out (adding seats one by one and removing them at once gives back exactly
what was charged).

- A positive amount (an upgrade, more seats) is charged to the default card at once. The change
  applies when the payment succeeds (after 3-D Secure if the card asks for it), with an invoice
  (`invoices.issue_for_plan_change`) marked paid by that payment. A declined card changes nothing.
- A negative amount (a downgrade, fewer seats) is credited to the usage-credit balance at once:
  a ledger entry with source "plan_change", listed in Balance History. Removing seats is
  credited the same way as a downgrade, prorated; nothing is refunded to the card. Only time
  that was paid for is credited (`paid`): at most the period's renewal once its invoice is paid
  plus the period's charges that succeeded, less what was credited already. The rest comes off
  the period's open renewal invoice, voided and reissued for less; what was neither paid nor
  billed is not credited.
- Cancelling a paid plan is a downgrade to Basic; so is the operator's final action when a
  renewal stays unpaid after its last retry (`step_down_unpaid`, see invoices.collection).

The rules:
- only holders of plan.manage see or change the subscription;
- a paid plan needs a card on file (the default card), else `CardRequired`, whose page sends the
  user to Payment Methods;
- the seats never go below those in use (active users and pending invitations) nor below the
  plan's included seats; Basic's seats are fixed. A plan change keeps the seats the account
  has (at least the new plan's included seats); a downgrade to Basic needs at most Basic's seats
  in use;
- custom-priced (invoice-priced) accounts are not self-serve: they see their plan and that they
  are invoiced, and contact sales; Custom is arranged with sales too;
- each change is confirmed with a request key: the PlanChange row is written before Stripe is
  called, so a replayed confirmation returns the first outcome and charges or credits nothing
  more. A change waiting for 3-D Secure is cancelled at Stripe (or found to have succeeded) when
  another change starts.

Callers commit.

Modules by job: `catalogue` (plans, what the Plans page shows), `quotes` (every rule, before
anything changes), `paid` (what the period was paid, which caps a credit) and `changes`
(applying a change, charging or crediting it). The proration by day is the invoices'
(`invoices.prorate`), which bills the change with the same amount."""

from app.services.invoices import Proration, billing_period, prorate
from app.services.subscription.catalogue import (
    CARD_REQUIRED_MESSAGE,
    CATALOGUE,
    CUSTOM_PRICED_MESSAGE,
    MAX_SEATS,
    PAYMENT_METHODS_PATH,
    SALES_EMAIL,
    PlanCard,
    Subscription,
    overview,
)
from app.services.subscription.changes import ChangeResult, change_plan, change_seats, step_down_unpaid
from app.services.subscription.quotes import CardRequired, Quote, QuoteChanged, quote_plan, quote_seats

__all__ = [
    "CARD_REQUIRED_MESSAGE",
    "CATALOGUE",
    "CUSTOM_PRICED_MESSAGE",
    "MAX_SEATS",
    "PAYMENT_METHODS_PATH",
    "SALES_EMAIL",
    "CardRequired",
    "ChangeResult",
    "PlanCard",
    "Proration",
    "Quote",
    "QuoteChanged",
    "Subscription",
    "billing_period",
    "change_plan",
    "change_seats",
    "overview",
    "prorate",
    "quote_plan",
    "quote_seats",
    "step_down_unpaid",
]
