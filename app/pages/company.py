"""Company information (seeds 001, 002): logo, account name, account id, domain, default
timezone, language and address. Viewing needs company.view, editing company.edit, and renaming
the account account.rename (owners)."""

from __future__ import annotations

import reflex as rx

from app.components.address import address_fields
from app.components.forms import (
    error_of,
    field,
    field_pair,
    form_messages,
    select,
    settings_form,
    state_form,
    text_field,
    with_submit,
)
from app.components.layout import console_page
from app.components.upload import image_preview, image_upload
from app.services import company
from app.services.address import address_from
from app.services.permissions import Permission
from app.state.address import AddressFormState
from app.state.form import texts
from app.state.logo import AccountLogo
from app.state.session import SessionState, acting


class CompanyState(AccountLogo, AddressFormState, rx.State):
    name: rx.Field[str] = rx.field("")
    public_id: rx.Field[str] = rx.field("")
    can_edit: rx.Field[bool] = rx.field(False)
    can_rename: rx.Field[bool] = rx.field(False)
    domain: rx.Field[str] = rx.field("")
    timezone: rx.Field[str] = rx.field("")
    language: rx.Field[str] = rx.field("")
    # What the read-only view shows.
    language_name: rx.Field[str] = rx.field("")
    address_lines: rx.Field[list[str]] = rx.field(default_factory=list)

    def _reload(self, details: company.CompanyDetails) -> None:
        self.name, self.public_id, self.image_url = details.name, details.public_id, details.logo_url
        self.can_edit, self.can_rename = details.can_edit, details.can_rename
        self.domain, self.timezone, self.language = details.domain, details.timezone, details.language
        self.language_name = company.language_name(details.language)
        self._show_address(details.address)
        self.address_lines = details.address.lines()
        self._remount_form()

    async def _refresh_header(self) -> None:
        header = await self.get_state(SessionState)
        header.account_name, header.logo_url = self.name, self.image_url

    @rx.event
    def load(self):
        with self._attempt(), acting(self, Permission.COMPANY_VIEW) as (actor, session):
            self._reload(company.company_details(session, actor))

    @rx.event
    def save(self, form: dict):
        domain, timezone, language = texts(form, "domain", "timezone", "language")
        with self._attempt("save"):
            yield
            with acting(self, Permission.COMPANY_EDIT) as (actor, session):
                company.update_company(
                    session,
                    actor,
                    domain=domain,
                    timezone=timezone,
                    language=language,
                    address=address_from(form, company.ADDRESS_NAMES),
                )
                self._reload(company.company_details(session, actor))
            self.notice = "Company information saved."

    @rx.event
    async def rename(self, form: dict):
        with self._attempt("rename", field="name"):
            yield
            with acting(self, Permission.ACCOUNT_RENAME) as (actor, session):
                self.name = company.rename_account(session, actor, str(form.get("name") or "")).name
            self.notice = "The account is renamed."
            await self._refresh_header()


def _row(label: str, value, value_id: str) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value, id=value_id))


def _logo_card() -> rx.Component:
    return image_upload(
        CompanyState,
        label="Account logo",
        hint="PNG, JPEG or SVG, at most 1 MB. Shown in the header.",
        preview=image_preview(
            CompanyState,
            alt="Current logo",
            size="96px",
            object_fit="contain",
            empty=rx.center(
                rx.icon("building-2", size=36),
                width="96px",
                height="96px",
                class_name="ld-logo-empty",
                border_radius="8px",
            ),
        ),
        can_edit=CompanyState.can_edit,
        read_only_note="Ask an owner or admin to change the logo.",
    )


def _name_card() -> rx.Component:
    state = CompanyState
    return rx.card(
        rx.cond(
            state.can_rename,
            state_form(
                state,
                with_submit(
                    text_field(
                        "Account name",
                        field_id="account_name",
                        name="name",
                        default_value=state.name,
                        error=error_of(state, "name"),
                        max_length=company.NAME_MAX_LENGTH,
                    ),
                    "Rename",
                    loading=state.busy == "rename",
                ),
                on_submit=state.rename,
            ),
            rx.vstack(
                rx.text("Account name", class_name="ld-label"),
                rx.text(state.name, weight="bold", id="account-name"),
                rx.text(
                    "Only an owner can change the account name. Ask an owner of your account to change it.",
                    size="2",
                    color_scheme="gray",
                    id="rename-note",
                ),
                spacing="1",
            ),
        ),
        rx.data_list.root(_row("Account ID", state.public_id, "account-id"), margin_top="1em"),
    )


def _edit_form() -> rx.Component:
    state = CompanyState
    return settings_form(
        state,
        text_field(
            "Domain",
            field_id="domain",
            default_value=state.domain,
            error=error_of(state, "domain"),
            placeholder="example.com",
            hint="Your company's web domain, without http://.",
        ),
        field_pair(
            field(
                "Default timezone",
                select(
                    "timezone",
                    [(z, z.replace("_", " ")) for z in company.timezone_options()],
                    default_value=state.timezone,
                ),
                field_id="timezone",
                error=error_of(state, "timezone"),
                hint="Dates across the console are shown in this timezone.",
            ),
            field(
                "Language",
                select("language", company.language_options(), default_value=state.language),
                field_id="language",
                error=error_of(state, "language"),
            ),
        ),
        rx.heading("Address", size="3", as_="h2", margin_top="0.5em"),
        rx.text("Also the address printed on your invoices.", size="2", color_scheme="gray"),
        address_fields(state, company.ADDRESS_NAMES),
        rx.button("Save Changes", type="submit", loading=state.busy == "save", size="3", align_self="start"),
    )


def _read_only_details() -> rx.Component:
    state = CompanyState
    return rx.vstack(
        rx.data_list.root(
            _row("Domain", rx.cond(state.domain != "", state.domain, "—"), "company-domain"),
            _row("Default timezone", state.timezone, "company-timezone"),
            _row("Language", state.language_name, "company-language"),
            _row(
                "Address",
                rx.cond(
                    state.address_lines.length() > 0,
                    rx.vstack(rx.foreach(state.address_lines, lambda line: rx.text(line)), spacing="0"),
                    "—",
                ),
                "company-address",
            ),
        ),
        rx.text("Your role can see these details but not change them.", size="2", color_scheme="gray"),
        spacing="3",
    )


@console_page("/company", "General information about your business.", on_load=[CompanyState.load], max_width="720px")
def company_page() -> list[rx.Component]:
    state = CompanyState
    return [
        form_messages(state),
        _logo_card(),
        _name_card(),
        rx.card(rx.cond(state.can_edit, _edit_form(), _read_only_details())),
    ]
