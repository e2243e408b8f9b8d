"""Company information (Administration)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import console_page, page_heading
from app.db import transaction
from app.services.company import company_info
from app.services.errors import DomainError
from app.services.permissions import Permission
from app.state.session import current_actor


class CompanyState(rx.State):
    name: str = ""
    public_id: str = ""
    domain: str = ""
    timezone: str = ""
    language: str = ""
    error: str = ""

    @rx.event
    def load(self):
        try:
            actor = current_actor(self, Permission.COMPANY_VIEW)
            with transaction() as session:
                info = company_info(session, actor)
        except DomainError as exc:
            self.error = exc.message
            return
        self.error = ""
        self.name = info.name
        self.public_id = info.public_id
        self.domain = info.domain or "—"
        self.timezone = info.timezone
        self.language = info.language


def _row(label: str, value) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value))


@console_page(
    route="/company",
    title="Company information",
    permission=Permission.COMPANY_VIEW,
    section="Administration",
    nav_label="Company",
    order=10,
    on_load=[CompanyState.load],
)
def company_page() -> rx.Component:
    return rx.vstack(
        page_heading("Company information"),
        rx.card(
            rx.data_list.root(
                _row("Company name", CompanyState.name),
                _row("Account ID", CompanyState.public_id),
                _row("Domain", CompanyState.domain),
                _row("Default timezone", CompanyState.timezone),
                _row("Language", CompanyState.language),
            ),
        ),
        align="stretch",
    )
