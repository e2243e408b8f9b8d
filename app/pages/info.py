"""Info: the page every user sees."""

from __future__ import annotations

import reflex as rx

from app.components.layout import console_page, page_heading
from app.db import transaction
from app.services.company import company_info
from app.services.errors import DomainError
from app.services.permissions import Permission
from app.state.session import current_actor


class InfoState(rx.State):
    plan_name: str = ""
    active_users: int = 0
    invited_users: int = 0
    error: str = ""

    @rx.event
    def load(self):
        try:
            actor = current_actor(self, Permission.INFO_VIEW)
            with transaction() as session:
                info = company_info(session, actor)
        except DomainError as exc:
            self.error = exc.message
            return
        self.error = ""
        self.plan_name = info.plan_name
        self.active_users = info.active_users
        self.invited_users = info.invited_users


def _stat(label: str, value, stat_id: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="6", id=stat_id),
            spacing="1",
        ),
        min_width="180px",
    )


@console_page(route="/", title="Info", permission=Permission.INFO_VIEW, order=0, on_load=[InfoState.load])
def info_page() -> rx.Component:
    return rx.vstack(
        page_heading("Info", "An overview of your account."),
        rx.hstack(
            _stat("Plan", InfoState.plan_name, "info-plan"),
            _stat("Active users", InfoState.active_users, "info-active-users"),
            _stat("Pending invitations", InfoState.invited_users, "info-invited-users"),
            spacing="4",
            wrap="wrap",
        ),
        align="stretch",
    )
