"""Back office: one account as its customer's Overview shows it (figures, users, payments,
invoices, ledger, audit log) and what an operator may do to it, each with a reason that goes into
the account's audit log; and its chat box's conversation, where staff answer (read by opening it,
new messages shown live)."""

from __future__ import annotations

import reflex as rx

from app.components.chat import chat_form, chat_log
from app.components.forms import error_of, form_error, form_messages, select, state_form, text_field
from app.components.layout import section_card
from app.components.panels import stat
from app.components.tables import data_table, status_badge
from app.config import get_settings
from app.errors import ValidationFailed
from app.pages.operator.accounts import STATUS_COLORS
from app.pages.operator.shell import operator_page
from app.services import live
from app.services.chat import ChatLine
from app.services.money import parse_dollars
from app.services.operator import accounts, chat, staff
from app.services.operator.staff import author_of
from app.services.plans import PLANS
from app.state.card_payment import new_request_key
from app.state.form import FormState, texts
from app.state.live import LiveState
from app.state.operator import operating
from app.state.session import sign_in_redirect


class OperatorAccountState(FormState, rx.State):
    account_id: rx.Field[str] = rx.field("")
    name: rx.Field[str] = rx.field("")
    plan: rx.Field[str] = rx.field("")
    plan_code: rx.Field[str] = rx.field("")
    custom_pricing: rx.Field[bool] = rx.field(False)
    status: rx.Field[str] = rx.field("")
    suspended: rx.Field[bool] = rx.field(False)
    figures: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    users: rx.Field[list[accounts.Line]] = rx.field(default_factory=list)
    invited: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    refundable: rx.Field[list[list[str]]] = rx.field(default_factory=list)
    payments: rx.Field[list[accounts.Line]] = rx.field(default_factory=list)
    invoices: rx.Field[list[accounts.Line]] = rx.field(default_factory=list)
    ledger: rx.Field[list[accounts.Line]] = rx.field(default_factory=list)
    audit: rx.Field[list[accounts.Line]] = rx.field(default_factory=list)
    # Makes one submitted grant one grant, however often it is sent; renewed once it is done.
    grant_key: rx.Field[str] = rx.field("")

    def _refresh(self) -> None:
        with operating(self) as (_operator, session):
            detail = accounts.account_detail(session, self.account_id)
        self.name, self.plan, self.plan_code = detail.name, detail.plan, detail.plan_code
        self.custom_pricing, self.status, self.suspended = detail.custom_pricing, detail.status, detail.suspended
        self.figures = [[label, value] for label, value in detail.figures]
        self.users, self.payments, self.invoices = detail.users, detail.payments, detail.invoices
        self.ledger, self.audit = detail.ledger, detail.audit
        self.invited = [[u.id, u.cells[1]] for u in detail.users if u.cells[3] == "invited"]
        self.refundable = [[p.id, p.cells[0]] for p in detail.refundable]

    @rx.event
    def load(self):
        self._clear_messages()
        self.account_id = self.router.url.query_parameters.get("id", "")
        self.grant_key = new_request_key()
        with self._attempt():
            self._refresh()

    @rx.event
    def grant(self, form: dict):
        with self._attempt("grant"), operating(self) as (operator, session):
            direction, amount, reason, key, expires_on, priority = texts(
                form, "direction", "amount", "reason", "request_key", "expires_at", "priority"
            )
            cents = parse_dollars(amount)
            accounts.grant_form(
                session,
                author_of(operator),
                self.account_id,
                amount_cents=-cents if direction == "take" else cents,
                reason=reason,
                request_key=key,
                expires_on=expires_on,
                priority=priority,
            )
            self.notice, self.grant_key = "Credits adjusted.", new_request_key()
            self._remount_form()
        self._after()

    @rx.event
    def change_plan(self, form: dict):
        with self._attempt("plan"), operating(self) as (operator, session):
            plan_code, pricing, reason = texts(form, "plan", "pricing", "reason")
            accounts.set_plan(
                session,
                author_of(operator),
                self.account_id,
                plan_code=plan_code,
                custom_pricing=pricing == "custom",
                reason=reason,
            )
            self.notice = "Plan changed."
        self._after()

    @rx.event
    def set_overage(self, form: dict):
        with self._attempt("overage"), operating(self) as (operator, session):
            amount, reason = texts(form, "overage", "reason")
            accounts.set_overage_line(
                session, author_of(operator), self.account_id, cents=parse_dollars(amount, "overage"), reason=reason
            )
            self.notice = "Overage protection line set."
        self._after()

    @rx.event
    def suspend(self, form: dict):
        with self._attempt("suspend"), operating(self) as (operator, session):
            (reason,) = texts(form, "reason")
            suspended = not self.suspended
            accounts.set_suspended(session, author_of(operator), self.account_id, suspended=suspended, reason=reason)
            self.notice = "Account suspended." if suspended else "Account reactivated."
        self._after()

    @rx.event
    def refund(self, form: dict):
        with self._attempt("refund"), operating(self) as (operator, session):
            payment_id, amount, reason, key = texts(form, "payment", "refund_amount", "reason", "request_key")
            if not payment_id:
                raise ValidationFailed("Choose the top-up to refund.", field="payment")
            accounts.refund_topup(
                session,
                author_of(operator),
                self.account_id,
                payment_public_id=payment_id,
                amount_cents=parse_dollars(amount, "refund_amount"),
                reason=reason,
                request_key=key,
            )
            self.notice, self.grant_key = "Refunded through Stripe; the credits were taken back.", new_request_key()
            self._remount_form()
        self._after()

    @rx.event
    def view_as(self, form: dict):
        """Open the customer's own console, read-only, under a banner (the tab leaves the back office)."""
        outcome = None
        with self._attempt("view_as"), operating(self) as (operator, session):
            (reason,) = texts(form, "reason")
            outcome = accounts.view_as(session, operator, self.account_id, reason=reason)
        if outcome is None:
            return None
        return sign_in_redirect(outcome, "/billing", staff.VIEWERS)

    @rx.event
    def resend(self, form: dict):
        with self._attempt("resend"), operating(self) as (operator, session):
            user_id, reason = texts(form, "user", "reason")
            if not user_id:
                raise ValidationFailed("Choose the invitation to send again.", field="user")
            accounts.resend_invitation(
                session,
                author_of(operator),
                self.account_id,
                user_public_id=user_id,
                reason=reason,
                base_url=get_settings().public_url,
            )
            self.notice = "Invitation sent again."
        self._after()

    def _after(self) -> None:
        """Show the account as the action left it (or as it is, after a refusal)."""
        if not self.error and not self.errors:
            notice = self.notice
            with self._attempt():
                self._refresh()
            self.notice = notice


class OperatorChatState(FormState, LiveState, rx.State):
    """The account's conversation: read by staff when shown, answered here."""

    account_id: rx.Field[str] = rx.field("")
    lines: rx.Field[list[ChatLine]] = rx.field(default_factory=list)

    @rx.event
    def load(self):
        self.account_id, self.lines = self.router.url.query_parameters.get("id", ""), []
        with self._attempt(), operating(self) as (_operator, session):
            self.lines = chat.read(session, self.account_id)
        self._watch_live(live.OPERATOR_INBOX)

    @rx.event
    def send(self, form: dict):
        with self._attempt("send", field="body"), operating(self) as (operator, session):
            (body,) = texts(form, "body")
            self.lines = chat.reply(session, operator, self.account_id, body)
            self._remount_form()

    def _live_refresh(self) -> None:
        with operating(self) as (_operator, session):
            self.lines = chat.read(session, self.account_id)


def _conversation() -> rx.Component:
    state = OperatorChatState
    return section_card(
        "Conversation",
        form_error(state.error),
        chat_log(
            state.lines,
            ours=lambda line: line.from_support,
            empty="No messages yet. The customer's users write from the chat box of their console.",
            log_id="operator-chat-log",
        ),
        chat_form(state, label="Answer", button="Send answer", form_id="operator-chat-form"),
        description="The account's chat box: its users see your answer at once.",
        id="operator-chat",
    )


def _reason(action: str) -> rx.Component:
    return text_field(
        "Reason",
        field_id=f"{action}-reason",
        name="reason",
        required=True,
        placeholder="Recorded in the account's audit log",
        error=error_of(OperatorAccountState, "reason"),
    )


def _action(title: str, handler, button: rx.Var | str, action: str, *fields: rx.Component, **props) -> rx.Component:
    state = OperatorAccountState
    return section_card(
        title,
        state_form(
            state,
            rx.vstack(
                *fields,
                _reason(action),
                rx.button(button, type="submit", loading=state.busy == action),
                align="stretch",
            ),
            on_submit=handler,
            **props,
        ),
    )


def _lines(table_id: str, columns: list[str], rows) -> rx.Component:
    return data_table(
        table_id,
        columns,
        rows,
        lambda line: rx.table.row(rx.foreach(line.cells, lambda cell: rx.table.cell(cell))),
        actions=False,
        size="1",
    )


@operator_page("/operator/account", "Account", on_load=[OperatorAccountState.load, OperatorChatState.load])
def operator_account_page() -> list[rx.Component]:
    state = OperatorAccountState
    return [
        rx.hstack(
            rx.heading(state.name, size="6", id="operator-account-name"),
            rx.text(state.account_id, color_scheme="gray"),
            rx.badge(state.plan, " plan", variant="soft"),
            status_badge(state.status, STATUS_COLORS, id="operator-account-status"),
            align="center",
            spacing="3",
        ),
        form_messages(state),
        rx.grid(rx.foreach(state.figures, lambda f: stat(f[0], f[1])), columns="3", spacing="4"),
        _conversation(),
        rx.grid(
            _action(
                "Grant or take back credits",
                state.grant,
                "Adjust credits",
                "grant",
                rx.el.input(type="hidden", name="request_key", value=state.grant_key),
                select("direction", [("grant", "Grant"), ("take", "Take back")], default_value="grant"),
                text_field("Amount (USD)", field_id="amount", required=True, error=error_of(state, "amount")),
                text_field(
                    "Usable through (optional)",
                    field_id="expires_at",
                    type="date",
                    error=error_of(state, "expires_at"),
                    hint="The last day, in the account's timezone; what is left then expires. Empty: never.",
                ),
                text_field(
                    "Priority (optional, 0–100)",
                    field_id="priority",
                    error=error_of(state, "priority"),
                    hint="Grants expiring together are used highest priority first; all grants before purchased "
                    "credits.",
                ),
                id="grant-form",
            ),
            _action(
                "Plan and pricing",
                state.change_plan,
                "Change plan",
                "plan",
                select("plan", [(code, plan.name) for code, plan in PLANS.items()], default_value=state.plan_code),
                select(
                    "pricing",
                    [("standard", "Standard pricing"), ("custom", "Custom pricing (invoiced)")],
                    default_value=rx.cond(state.custom_pricing, "custom", "standard"),
                ),
                id="plan-form",
            ),
            _action(
                "Overage protection line",
                state.set_overage,
                "Set line",
                "overage",
                text_field("Line (USD)", field_id="overage", required=True, error=error_of(state, "overage")),
                id="overage-form",
            ),
            _action(
                "Suspension",
                state.suspend,
                rx.cond(state.suspended, "Reactivate account", "Suspend account"),
                "suspend",
                rx.text(
                    rx.cond(
                        state.suspended,
                        "The account is suspended: its API calls get 403 and its console is read-only.",
                        "Its API calls will get 403 account_suspended and its console becomes read-only.",
                    ),
                    size="2",
                ),
                id="suspend-form",
            ),
            _action(
                "Refund a top-up through Stripe",
                state.refund,
                "Refund",
                "refund",
                rx.el.input(type="hidden", name="request_key", value=state.grant_key),
                rx.el.select(
                    rx.el.option("Choose a top-up", value=""),
                    rx.foreach(state.refundable, lambda p: rx.el.option(p[1], value=p[0])),
                    name="payment",
                    id="payment",
                ),
                form_error(error_of(state, "payment")),
                text_field(
                    "Amount (USD)", field_id="refund_amount", required=True, error=error_of(state, "refund_amount")
                ),
                id="refund-form",
            ),
            _action(
                "View as the customer",
                state.view_as,
                "View as",
                "view_as",
                rx.text(
                    "Opens the customer's console as they see it, read-only, under a banner; recorded in the "
                    "account's audit log.",
                    size="2",
                ),
                id="view-as-form",
            ),
            _action(
                "Resend an invitation",
                state.resend,
                "Send again",
                "resend",
                rx.el.select(
                    rx.el.option("Choose an invitation", value=""),
                    rx.foreach(state.invited, lambda u: rx.el.option(u[1], value=u[0])),
                    name="user",
                    id="user",
                ),
                form_error(error_of(state, "user")),
                id="resend-form",
            ),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
        ),
        section_card("Users", _lines("operator-users", ["Name", "Email", "Role", "Status"], state.users)),
        section_card("Payments", _lines("operator-payments", ["When", "Method", "Amount", "Status"], state.payments)),
        section_card("Invoices", _lines("operator-invoices", ["Issued", "Kind", "Total", "Status"], state.invoices)),
        section_card("Ledger", _lines("operator-ledger", ["When", "Source", "Amount", "Description"], state.ledger)),
        section_card("Audit log", _lines("operator-audit", ["When", "Who", "What"], state.audit)),
    ]
