"""Company information (seeds 001, 002): logo, account name, account id, domain, default
timezone, language and address. Viewing needs company.view, editing company.edit, and renaming
the account account.rename (owners)."""

from __future__ import annotations

import reflex as rx

from app.components.address import address_fields
from app.components.forms import error_of, field, form_error, form_notice, select, text_field
from app.components.layout import console_page, page_heading
from app.services import company
from app.services.address import address_from
from app.services.permissions import Permission
from app.state.address import AddressFormState
from app.state.events import event
from app.state.form import FormState
from app.state.session import SessionState, acting

LOGO_UPLOAD_ID = "logo-upload"
# What the file chooser offers; the server decides by the content (app/services/company.py).
LOGO_ACCEPT = {"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/svg+xml": [".svg"]}


class CompanyState(FormState, AddressFormState, rx.State):
    name: rx.Field[str] = rx.field("")
    public_id: rx.Field[str] = rx.field("")
    logo_url: rx.Field[str] = rx.field("")
    can_edit: rx.Field[bool] = rx.field(False)
    can_rename: rx.Field[bool] = rx.field(False)
    domain: rx.Field[str] = rx.field("")
    timezone: rx.Field[str] = rx.field("")
    language: rx.Field[str] = rx.field("")
    # What the read-only view shows.
    language_name: rx.Field[str] = rx.field("")
    address_lines: rx.Field[list[str]] = rx.field(default_factory=list)

    def _reload(self, details: company.CompanyDetails) -> None:
        self.name, self.public_id, self.logo_url = details.name, details.public_id, details.logo_url
        self.can_edit, self.can_rename = details.can_edit, details.can_rename
        self.domain, self.timezone, self.language = details.domain, details.timezone, details.language
        self.language_name = company.language_name(details.language)
        self._show_address(details.address)
        self.address_lines = details.address.lines()
        self._remount_form()

    async def _refresh_header(self) -> None:
        header = await self.get_state(SessionState)
        header.account_name, header.logo_url = self.name, self.logo_url

    @rx.event
    def load(self):
        with self._attempt():
            with acting(self, Permission.COMPANY_VIEW) as (actor, session):
                self._reload(company.company_details(session, actor))

    @rx.event
    def save(self, form: dict):
        with self._attempt("save"):
            yield
            with acting(self, Permission.COMPANY_EDIT) as (actor, session):
                company.update_company(
                    session,
                    actor,
                    domain=str(form.get("domain") or ""),
                    timezone=str(form.get("timezone") or ""),
                    language=str(form.get("language") or ""),
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

    @event
    async def upload_logo(self, files: list[rx.UploadFile]):
        if not files:
            self._clear_messages()
            return
        with self._attempt("upload", field="logo"):
            yield
            with acting(self, Permission.COMPANY_EDIT) as (actor, session):
                # One byte over the limit is enough to refuse the file.
                previous = company.save_logo(session, actor, await files[0].read(company.LOGO_MAX_BYTES + 1))
                self.logo_url = company.company_details(session, actor).logo_url
            company.discard_file(previous)
            self.notice = "The new logo is saved."
            await self._refresh_header()

    @rx.event
    def logo_rejected(self, _rejected: list[dict]):
        self._clear_messages()
        self.errors = {"logo": company.LOGO_RULES}

    @rx.event
    async def remove_logo(self):
        with self._attempt("remove", field="logo"):
            with acting(self, Permission.COMPANY_EDIT) as (actor, session):
                previous = company.remove_logo(session, actor)
            company.discard_file(previous)
            self.logo_url = ""
            self.notice = "The logo is removed."
            await self._refresh_header()


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
                                    loading=state.busy == "upload",
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
                    error_of(state, "logo") != "",
                    rx.text(error_of(state, "logo"), size="2", color_scheme="red", id="logo-error", role="alert"),
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
                        name="name",
                        default_value=state.name,
                        error=error_of(state, "name"),
                        max_length=company.NAME_MAX_LENGTH,
                    ),
                    rx.button("Rename", type="submit", loading=state.busy == "rename", margin_top="1.6em"),
                    align="start",
                    spacing="3",
                    width="100%",
                ),
                on_submit=state.rename,
                reset_on_submit=False,
                key=state.form_key,
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
    return rx.form(
        rx.vstack(
            text_field(
                "Domain",
                field_id="domain",
                default_value=state.domain,
                error=error_of(state, "domain"),
                placeholder="example.com",
                hint="Your company's web domain, without http://.",
            ),
            rx.grid(
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
                columns="2",
                spacing="4",
                width="100%",
            ),
            rx.heading("Address", size="3", as_="h2", margin_top="0.5em"),
            rx.text("Also the address printed on your invoices.", size="2", color_scheme="gray"),
            address_fields(state, company.ADDRESS_NAMES),
            rx.button("Save Changes", type="submit", loading=state.busy == "save", size="3", align_self="start"),
            spacing="4",
            align="stretch",
        ),
        on_submit=state.save,
        reset_on_submit=False,
        key=state.form_key,
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
