"""Company information (seeds 001, 002): logo, account name, account id, domain, default
timezone, language and address. Viewing needs company.view, editing company.edit, and renaming
the account account.rename (owners)."""

from __future__ import annotations

import reflex as rx

from app.components.forms import field, form_error, form_notice, text_field
from app.components.layout import console_page, page_heading
from app.db import transaction
from app.errors import DomainError, FormInvalid
from app.services import company
from app.services.permissions import Permission
from app.state.session import SessionState, current_actor

LOGO_UPLOAD_ID = "logo-upload"
# What the file chooser offers; the server decides by the content (app/services/company.py).
LOGO_ACCEPT = {"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/svg+xml": [".svg"]}
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region", "country")
FORM_FIELDS = ("domain", "timezone", "language", *(f"address_{name}" for name in ADDRESS_FIELDS))
_SELECT_STYLE = {
    "height": "var(--space-6)",
    "padding": "0 var(--space-2)",
    "border": "1px solid var(--gray-a7)",
    "border_radius": "var(--radius-2)",
    "background": "var(--color-surface)",
    "color": "var(--gray-12)",
    "font_size": "var(--font-size-2)",
    "width": "100%",
}


class CompanyState(rx.State):
    name: str = ""
    saved_name: str = ""
    public_id: str = ""
    logo_url: str = ""
    can_edit: bool = False
    can_rename: bool = False
    # The form's values; saved_* are what the read-only view shows.
    domain: str = ""
    timezone: str = ""
    language: str = ""
    address_line1: str = ""
    address_line2: str = ""
    address_city: str = ""
    address_postal_code: str = ""
    address_region: str = ""
    address_country: str = ""
    saved_domain: str = ""
    saved_timezone: str = ""
    saved_language: str = ""
    saved_address: list[str] = []
    # Errors by field id.
    name_error: str = ""
    logo_error: str = ""
    domain_error: str = ""
    timezone_error: str = ""
    language_error: str = ""
    address_line1_error: str = ""
    address_line2_error: str = ""
    address_city_error: str = ""
    address_postal_code_error: str = ""
    address_region_error: str = ""
    address_country_error: str = ""
    error: str = ""
    notice: str = ""
    saving: bool = False
    renaming: bool = False
    uploading: bool = False

    def _clear_errors(self) -> None:
        for name in (*FORM_FIELDS, "name", "logo"):
            setattr(self, f"{name}_error", "")
        self.error = self.notice = ""

    def _reload(self, details: company.CompanyDetails) -> None:
        self.name = self.saved_name = details.name
        self.public_id = details.public_id
        self.logo_url = details.logo_url
        self.can_edit, self.can_rename = details.can_edit, details.can_rename
        self.domain = self.saved_domain = details.domain
        self.timezone = self.saved_timezone = details.timezone
        self.language, self.saved_language = details.language, company.language_name(details.language)
        for name in ADDRESS_FIELDS:
            setattr(self, f"address_{name}", getattr(details.address, name))
        self.saved_address = details.address.lines()

    async def _refresh_header(self, account_name: str, logo_url: str) -> None:
        header = await self.get_state(SessionState)
        header.account_name, header.logo_url = account_name, logo_url

    @rx.event
    def load(self):
        self._clear_errors()
        self.saving = self.renaming = self.uploading = False
        try:
            actor = current_actor(self, Permission.COMPANY_VIEW)
            with transaction() as session:
                self._reload(company.company_details(session, actor))
        except DomainError as exc:
            self.error = exc.message

    @rx.event
    def set_field(self, name: str, value: str):
        if name in FORM_FIELDS:
            setattr(self, name, value)

    @rx.event
    def set_name(self, value: str):
        self.name = value

    @rx.event
    def save(self, _form_data: dict):
        self._clear_errors()
        self.saving = True
        yield
        try:
            actor = current_actor(self, Permission.COMPANY_EDIT)
            with transaction() as session:
                company.update_company(
                    session,
                    actor,
                    domain=self.domain,
                    timezone=self.timezone,
                    language=self.language,
                    address=company.Address(**{name: getattr(self, f"address_{name}") for name in ADDRESS_FIELDS}),
                )
                self._reload(company.company_details(session, actor))
        except FormInvalid as exc:
            for name, message in exc.errors.items():
                setattr(self, f"{name}_error", message)
        except DomainError as exc:
            self.error = exc.message
        else:
            self.notice = "Company information saved."
        self.saving = False

    @rx.event
    async def rename(self, _form_data: dict):
        self._clear_errors()
        self.renaming = True
        yield
        try:
            actor = current_actor(self, Permission.ACCOUNT_RENAME)
            with transaction() as session:
                account = company.rename_account(session, actor, self.name)
                self.name = self.saved_name = account.name
        except DomainError as exc:
            self.name_error = exc.message
        else:
            self.notice = "The account is renamed."
            await self._refresh_header(self.saved_name, self.logo_url)
        self.renaming = False

    @rx.event
    async def upload_logo(self, files: list[rx.UploadFile]):
        self._clear_errors()
        if not files:
            return
        self.uploading = True
        yield
        try:
            actor = current_actor(self, Permission.COMPANY_EDIT)
            # One byte over the limit is enough to refuse the file.
            content = await files[0].read(company.LOGO_MAX_BYTES + 1)
            with transaction() as session:
                previous = company.save_logo(session, actor, content)
                details = company.company_details(session, actor)
        except DomainError as exc:
            self.logo_error = exc.message
        else:
            company.discard_file(previous)
            self.logo_url = details.logo_url
            self.notice = "The new logo is saved."
            await self._refresh_header(self.saved_name, self.logo_url)
        self.uploading = False

    @rx.event
    def logo_rejected(self, _rejected: list[dict]):
        self._clear_errors()
        self.logo_error = company.LOGO_RULES

    @rx.event
    async def remove_logo(self):
        self._clear_errors()
        try:
            actor = current_actor(self, Permission.COMPANY_EDIT)
            with transaction() as session:
                previous = company.remove_logo(session, actor)
        except DomainError as exc:
            self.logo_error = exc.message
            return
        company.discard_file(previous)
        self.logo_url = ""
        self.notice = "The logo is removed."
        await self._refresh_header(self.saved_name, "")


def _row(label: str, value, value_id: str) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value, id=value_id))


def _logo_card() -> rx.Component:
    state = CompanyState
    preview = rx.cond(
        state.logo_url != "",
        rx.image(
            src=state.logo_url, alt="Current logo", width="96px", height="96px", object_fit="contain", id="logo-preview"
        ),
        rx.center(
            rx.icon("building-2", size=36), width="96px", height="96px", class_name="ld-logo-empty", border_radius="8px"
        ),
    )
    return rx.card(
        rx.hstack(
            preview,
            rx.vstack(
                rx.text("Account logo", class_name="ld-label"),
                rx.cond(
                    state.can_edit,
                    rx.vstack(
                        rx.hstack(
                            rx.upload.root(
                                rx.button(
                                    rx.icon("upload", size=16),
                                    "Upload logo",
                                    variant="soft",
                                    loading=state.uploading,
                                    type="button",
                                ),
                                id=LOGO_UPLOAD_ID,
                                accept=LOGO_ACCEPT,
                                max_files=1,
                                max_size=company.LOGO_MAX_BYTES,
                                multiple=False,
                                on_drop=state.upload_logo(rx.upload_files(upload_id=LOGO_UPLOAD_ID)),
                                on_drop_rejected=state.logo_rejected,
                            ),
                            rx.cond(
                                state.logo_url != "",
                                rx.button(
                                    "Remove logo", variant="ghost", color_scheme="red", on_click=state.remove_logo
                                ),
                            ),
                            spacing="3",
                            align="center",
                        ),
                        rx.text("PNG, JPEG or SVG, at most 1 MB. Shown in the header.", size="1", color_scheme="gray"),
                        spacing="2",
                    ),
                    rx.text("Ask an owner or admin to change the logo.", size="2", color_scheme="gray"),
                ),
                rx.cond(
                    state.logo_error != "",
                    rx.text(state.logo_error, size="2", color_scheme="red", id="logo-error", role="alert"),
                ),
                spacing="2",
            ),
            spacing="5",
            align="center",
        ),
    )


def _name_card() -> rx.Component:
    state = CompanyState
    return rx.card(
        rx.cond(
            state.can_rename,
            rx.form(
                rx.hstack(
                    text_field(
                        "Account name",
                        field_id="account_name",
                        value=state.name,
                        on_change=state.set_name,
                        error=state.name_error,
                        max_length=company.NAME_MAX_LENGTH,
                    ),
                    rx.button(
                        "Rename",
                        type="submit",
                        loading=state.renaming,
                        disabled=state.name == state.saved_name,
                        margin_top="1.6em",
                    ),
                    align="start",
                    spacing="3",
                    width="100%",
                ),
                on_submit=state.rename,
                reset_on_submit=False,
            ),
            rx.vstack(
                rx.text("Account name", class_name="ld-label"),
                rx.text(state.saved_name, weight="bold", id="account-name"),
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


def _select(field_id: str, value: rx.Var, options, *, empty: str = "") -> rx.Component:
    return rx.el.select(
        *([rx.el.option(empty, value="")] if empty else []),
        *[rx.el.option(label, value=code) for code, label in options],
        id=field_id,
        name=field_id,
        value=value,
        on_change=lambda new: CompanyState.set_field(field_id, new),
        style=_SELECT_STYLE,
    )


def _input(label: str, name: str, **props) -> rx.Component:
    return text_field(
        label,
        field_id=name,
        value=getattr(CompanyState, name),
        on_change=lambda value: CompanyState.set_field(name, value),
        error=getattr(CompanyState, f"{name}_error"),
        **props,
    )


def _edit_form() -> rx.Component:
    state = CompanyState
    return rx.form(
        rx.vstack(
            _input("Domain", "domain", placeholder="example.com", hint="Your company's web domain, without http://."),
            rx.grid(
                field(
                    "Default timezone",
                    _select("timezone", state.timezone, [(z, z.replace("_", " ")) for z in company.timezone_options()]),
                    field_id="timezone",
                    error=state.timezone_error,
                    hint="Dates across the console are shown in this timezone.",
                ),
                field(
                    "Language",
                    _select("language", state.language, company.language_options()),
                    field_id="language",
                    error=state.language_error,
                ),
                columns="2",
                spacing="4",
                width="100%",
            ),
            rx.heading("Address", size="3", as_="h2", margin_top="0.5em"),
            rx.text("Also the address printed on your invoices.", size="2", color_scheme="gray"),
            _input("Street address", "address_line1", auto_complete="address-line1"),
            _input("Address line 2", "address_line2", auto_complete="address-line2"),
            rx.grid(
                _input("Postal code", "address_postal_code", auto_complete="postal-code"),
                _input("City", "address_city", auto_complete="address-level2"),
                columns="2",
                spacing="4",
                width="100%",
            ),
            rx.grid(
                _input("State or region", "address_region", auto_complete="address-level1"),
                field(
                    "Country",
                    _select("address_country", state.address_country, company.country_options(), empty="—"),
                    field_id="address_country",
                    error=state.address_country_error,
                ),
                columns="2",
                spacing="4",
                width="100%",
            ),
            rx.button("Save Changes", type="submit", loading=state.saving, size="3", align_self="start"),
            spacing="4",
            align="stretch",
        ),
        on_submit=state.save,
        reset_on_submit=False,
    )


def _read_only_details() -> rx.Component:
    state = CompanyState
    return rx.vstack(
        rx.data_list.root(
            _row("Domain", rx.cond(state.saved_domain != "", state.saved_domain, "—"), "company-domain"),
            _row("Default timezone", state.saved_timezone, "company-timezone"),
            _row("Language", state.saved_language, "company-language"),
            _row(
                "Address",
                rx.cond(
                    state.saved_address.length() > 0,
                    rx.vstack(rx.foreach(state.saved_address, lambda line: rx.text(line)), spacing="0"),
                    "—",
                ),
                "company-address",
            ),
        ),
        rx.text("Your role can see these details but not change them.", size="2", color_scheme="gray"),
        spacing="3",
    )


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
    state = CompanyState
    return rx.vstack(
        page_heading("Company information", "General information about your business."),
        form_notice(state.notice),
        form_error(state.error),
        _logo_card(),
        _name_card(),
        rx.card(rx.cond(state.can_edit, _edit_form(), _read_only_details())),
        spacing="4",
        align="stretch",
        max_width="720px",
    )
