"""Info (seed 002): the page every user sees. What the account contains, the add-ons of its plan
(gray when not included, green when included, yellow when a limit of theirs is reached) and every
plan limit with its usage, in red with "Account limit reached" once reached."""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from app.components.forms import form_error
from app.components.layout import console_page, section_heading
from app.components.panels import stat
from app.services import info
from app.services.permissions import Permission
from app.state.form import FormState
from app.state.live import LiveState
from app.state.session import SessionState, acting

UPGRADE_ROUTE = "/plans"
COMPANY_ROUTE = "/company"


@dataclass
class LimitRow:
    """A plan limit as drawn: its usage, how full its bar is and whether it is reached."""

    usage: info.LimitUsage
    percent: int
    reached: bool


def _limit_row(usage: info.LimitUsage) -> LimitRow:
    full = usage.used * 100 // usage.limit if usage.limit else 0
    return LimitRow(usage, 100 if usage.reached else full, usage.reached)


class InfoState(FormState, LiveState, rx.State):
    plan_name: rx.Field[str] = rx.field("")
    active_users: rx.Field[int] = rx.field(0)
    invited_users: rx.Field[int] = rx.field(0)
    api_keys: rx.Field[int] = rx.field(0)
    custom_roles: rx.Field[int] = rx.field(0)
    limits: rx.Field[list[LimitRow]] = rx.field(default_factory=list)
    add_ons: rx.Field[list[info.AddOnStatus]] = rx.field(default_factory=list)
    can_upgrade: rx.Field[bool] = rx.field(False)

    @rx.event
    def load(self):
        with self._attempt(), acting(self, Permission.INFO_VIEW) as (actor, session):
            self._show(info.account_info(session, actor))
            self._watch_live(actor.account_id)

    def _live_refresh(self) -> None:
        with acting(self, Permission.INFO_VIEW) as (actor, session):
            self._show(info.account_info(session, actor))

    def _show(self, account: info.AccountInfo) -> None:
        self.plan_name = account.plan_name
        self.active_users, self.invited_users = account.active_users, account.invited_users
        self.api_keys, self.custom_roles = account.api_keys, account.custom_roles
        self.can_upgrade = account.can_upgrade
        self.limits = [_limit_row(usage) for usage in account.limits]
        self.add_ons = list(account.add_ons)


def _stat(label: str, value, stat_id: str) -> rx.Component:
    return rx.card(stat(label, rx.heading(value, size="6", id=stat_id)), min_width="160px")


def _upgrade_hint() -> rx.Component:
    return rx.cond(
        InfoState.can_upgrade,
        rx.link("Upgrade your plan", href=UPGRADE_ROUTE, size="2"),
        rx.text("Ask an owner or admin of your account to upgrade the plan.", size="2", color_scheme="gray"),
    )


def _limit_card(row: LimitRow) -> rx.Component:
    color = rx.cond(row.reached, "red", "gray")
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(row.usage.label, weight="medium"),
                rx.spacer(),
                rx.text(
                    row.usage.used_text,
                    " of ",
                    row.usage.limit_text,
                    color_scheme=color,
                    weight=rx.cond(row.reached, "bold", "regular"),
                ),
                width="100%",
                align="center",
            ),
            rx.cond(
                row.usage.limit_text != "Unlimited",
                rx.progress(
                    value=row.percent,
                    color_scheme=rx.cond(row.reached, "red", "indigo"),
                    width="100%",
                    aria_label=row.usage.label,
                ),
            ),
            rx.cond(row.usage.hint != "", rx.text(row.usage.hint, size="1", color_scheme="gray")),
            rx.cond(
                row.reached,
                rx.hstack(
                    rx.text("Account limit reached", color_scheme="red", weight="bold", size="2", role="status"),
                    _upgrade_hint(),
                    spacing="3",
                    align="center",
                    wrap="wrap",
                ),
            ),
            spacing="2",
            width="100%",
        ),
        data_limit=row.usage.key,
        data_reached=rx.cond(row.reached, "true", "false"),
    )


def _add_on_card(row: info.AddOnStatus) -> rx.Component:
    color = rx.match(row.status, (info.INCLUDED, "green"), (info.LIMIT_REACHED, "yellow"), "gray")
    label = rx.match(row.status, (info.INCLUDED, "Included"), (info.LIMIT_REACHED, "Limit reached"), "Not in your plan")
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.match(
                    row.status,
                    (info.INCLUDED, rx.icon("circle-check", size=18, color="var(--green-9)")),
                    (info.LIMIT_REACHED, rx.icon("circle-alert", size=18, color="var(--amber-9)")),
                    rx.icon("circle-minus", size=18, color="var(--gray-8)"),
                ),
                rx.text(row.name, weight="medium"),
                rx.spacer(),
                rx.badge(label, color_scheme=color, variant="soft"),
                align="center",
                width="100%",
            ),
            rx.text(row.description, size="2", color_scheme="gray"),
            spacing="1",
        ),
        data_add_on=row.name,
        data_status=row.status,
        background=rx.match(
            row.status, (info.INCLUDED, "var(--green-2)"), (info.LIMIT_REACHED, "var(--amber-2)"), "var(--gray-2)"
        ),
    )


@console_page(
    "/",
    "An overview of your account: its contents, add-ons and the limits of your plan.",
    on_load=[InfoState.load],
    spacing="3",
)
def info_page() -> list[rx.Component]:
    state = InfoState
    return [
        form_error(state.error),
        # Seed 001: the account's common settings are one link away for those who may change them.
        rx.cond(
            SessionState.permissions.contains(Permission.COMPANY_EDIT.value),
            rx.link(
                rx.icon("building-2", size=16),
                "Update company details",
                href=COMPANY_ROUTE,
                id="update-company-details",
                display="inline-flex",
                align_items="center",
                gap="0.4em",
                width="fit-content",
            ),
        ),
        rx.hstack(
            _stat("Plan", state.plan_name, "info-plan"),
            _stat("Active users", state.active_users, "info-active-users"),
            _stat("Pending invitations", state.invited_users, "info-invited-users"),
            _stat("API keys", state.api_keys, "info-api-keys"),
            _stat("Custom roles", state.custom_roles, "info-custom-roles"),
            spacing="4",
            wrap="wrap",
        ),
        section_heading("Add-ons"),
        rx.grid(
            rx.foreach(state.add_ons, _add_on_card), columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="3"
        ),
        section_heading("Account limits"),
        rx.grid(rx.foreach(state.limits, _limit_card), columns=rx.breakpoints(initial="1", md="2"), spacing="3"),
        rx.text(
            "To raise a limit or activate an add-on, upgrade your plan or contact your customer success manager.",
            size="2",
            color_scheme="gray",
        ),
    ]
