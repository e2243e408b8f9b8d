"""The console shell (header and sidebar) and the one decorator every page is registered with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import reflex as rx

from app.components.chat import chat_launcher
from app.components.forms import error_of, field_error, form_messages, text_field
from app.components.upload import IMAGE_ACCEPT
from app.services.auth import Membership
from app.services.company import LOGO_MAX_BYTES
from app.services.navigation import ADMIN, NAV, SECTIONS, ConsolePage
from app.services.permissions import Permission
from app.state.chat import ChatState
from app.state.live import NoticesState
from app.state.logo import HeaderLogoState
from app.state.session import SessionState


def _allowed(permission: Permission) -> rx.Var:
    return SessionState.permissions.contains(permission.value)


def _nav_link(entry: ConsolePage) -> rx.Component:
    path = SessionState.router.url.path
    active = (path == entry.route) | (path == entry.route.rstrip("/") + "/")
    return rx.cond(
        _allowed(entry.permission),
        rx.link(
            entry.label,
            href=entry.route,
            class_name="ld-nav-link",
            data_active=rx.cond(active, "true", "false"),
            aria_current=rx.cond(active, "page", ""),
        ),
    )


def _nav(class_name: str) -> rx.Component:
    """The links to the pages the role may open: those without a section, then each section."""
    entries = sorted(NAV, key=lambda e: e.order)
    top = [_nav_link(e) for e in entries if e.section is None]
    sections = []
    for name in SECTIONS:
        members = [e for e in entries if e.section == name]
        if not members:
            continue
        visible = reduce(lambda a, b: a | b, [_allowed(e.permission) for e in members])
        sections.append(
            rx.cond(
                visible,
                rx.vstack(
                    rx.heading(name, size="2", class_name="ld-nav-section", as_="h2"),
                    *[_nav_link(e) for e in members],
                    spacing="1",
                    align="stretch",
                    role="group",
                    aria_label=name,
                ),
            )
        )
    return rx.el.nav(
        rx.vstack(*top, *sections, spacing="4", align="stretch"),
        class_name=class_name,
        aria_label="Console",
    )


def sidebar() -> rx.Component:
    """The sidebar of a wide window (styles.css hides it below 1024 px, where `menu_drawer` has
    the same links)."""
    return _nav("ld-sidebar")


def menu_drawer() -> rx.Component:
    """Below 1024 px: a menu button in the header that opens the sidebar's links in a drawer
    from the left (a dialog: Escape or a click outside closes it, focus stays inside while open).
    Each page has a shell of its own, so following a link closes it."""
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.icon_button(
                rx.icon("menu", size=20),
                variant="ghost",
                color_scheme="gray",
                aria_label="Menu",
                class_name="ld-menu-button",
                id="menu-button",
            )
        ),
        rx.dialog.content(
            rx.hstack(
                rx.dialog.title("Menu", size="4", margin="0"),
                rx.dialog.close(
                    rx.icon_button(rx.icon("x", size=18), variant="ghost", color_scheme="gray", aria_label="Close menu")
                ),
                justify="between",
                align="center",
                margin_bottom="1em",
            ),
            rx.dialog.description("The pages of the console your role may open.", class_name="ld-visually-hidden"),
            _nav("ld-drawer-nav"),
            class_name="ld-drawer",
        ),
    )


def _header_logo() -> rx.Component:
    """The account's logo; for those who may change it (company.edit) a button that opens the
    file chooser and uploads the chosen file as the new logo (seed 002)."""
    logo = rx.cond(
        SessionState.logo_url != "",
        rx.image(src=SessionState.logo_url, alt="Account logo", class_name="ld-logo", id="header-logo"),
        rx.box(rx.icon("building-2", size=22), class_name="ld-logo ld-logo-empty"),
    )
    upload_id = "header-logo-upload"
    return rx.cond(
        _allowed(Permission.COMPANY_EDIT),
        rx.upload.root(
            rx.el.button(
                logo,
                type="button",
                class_name="ld-logo-button",
                aria_label="Change the account logo",
                title="Change the account logo",
            ),
            id=upload_id,
            accept=IMAGE_ACCEPT,
            max_files=1,
            max_size=LOGO_MAX_BYTES,
            multiple=False,
            # The button is the one tab stop; its click opens the file chooser.
            no_keyboard=True,
            on_drop=HeaderLogoState.upload_image(rx.upload_files(upload_id=upload_id)),
            on_drop_rejected=HeaderLogoState.image_rejected,
        ),
        logo,
    )


def _admin_account_href() -> rx.Var:
    """The first Administration page the role may open ("" when none)."""
    href: Any = ""
    for entry in sorted((e for e in NAV if e.section == ADMIN), key=lambda e: e.order, reverse=True):
        href = rx.cond(_allowed(entry.permission), entry.route, href)
    return href


def _membership_item(membership: Membership) -> rx.Component:
    """One account of the signed-in person in the user menu; choosing another switches to it."""
    return rx.menu.item(
        rx.cond(membership.current, rx.icon("check", size=14), rx.box(width="14px")),
        membership.account_name,
        rx.text(membership.role_name, size="1", color_scheme="gray"),
        on_click=SessionState.switch_account(membership.id),
        disabled=membership.current,
        class_name="ld-membership",
    )


def _user_menu() -> rx.Component:
    admin_href = _admin_account_href()
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.cond(
                    SessionState.picture_url != "",
                    rx.image(src=SessionState.picture_url, alt="", class_name="ld-user-picture", id="header-picture"),
                    rx.icon("circle-user", size=16),
                ),
                rx.text(SessionState.user_name, class_name="ld-user-name"),
                variant="ghost",
                id="user-menu",
                aria_label=SessionState.user_name,
            )
        ),
        rx.menu.content(
            rx.menu.item(SessionState.user_email, disabled=True),
            rx.menu.separator(),
            rx.cond(
                SessionState.memberships.length() > 1,
                rx.fragment(
                    rx.text("Accounts", size="1", color_scheme="gray", padding_x="3"),
                    rx.foreach(SessionState.memberships, _membership_item),
                    rx.menu.separator(),
                ),
            ),
            # An operator viewing the account has no profile here, and leaves by ending the view.
            rx.cond(
                SessionState.viewing,
                rx.fragment(),
                rx.menu.item("Your profile", on_click=rx.redirect("/profile"), id="your-profile"),
            ),
            # Seed 002: the administration pages are reached from the user's menu too.
            rx.cond(
                admin_href != "",
                rx.menu.item("Admin account", on_click=rx.redirect(admin_href), id="admin-account"),
            ),
            rx.menu.item(
                rx.cond(SessionState.viewing, "Exit view", "Sign out"), on_click=SessionState.sign_out, id="sign-out"
            ),
        ),
    )


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            menu_drawer(),
            _header_logo(),
            rx.vstack(
                rx.text(SessionState.account_name, weight="bold", id="header-account-name", class_name="ld-truncate"),
                rx.text(
                    "Account ID ",
                    SessionState.account_public_id,
                    size="1",
                    color_scheme="gray",
                    id="header-account-id",
                    class_name="ld-truncate",
                ),
                spacing="0",
                min_width="0",
                flex="1",
            ),
            rx.hstack(
                rx.badge(SessionState.plan_name, " plan", variant="soft", id="header-plan"),
                rx.badge(SessionState.role_name, color_scheme="gray", id="header-role"),
                spacing="3",
                align="center",
                class_name="ld-header-badges",
            ),
            rx.cond(
                SessionState.past_due,
                rx.link(
                    rx.badge("Past due", color_scheme="red", variant="solid", id="header-past-due"),
                    href="/billing/invoices",
                ),
            ),
            _user_menu(),
            align="center",
            spacing="3",
            width="100%",
        ),
        # Why a logo chosen by clicking the header's logo was refused.
        field_error(error_of(HeaderLogoState, "logo"), "header-logo-error"),
        class_name="ld-header",
    )


def no_access() -> rx.Component:
    return page_message(
        "No access",
        "Your role does not include this page. Ask an owner or admin of your account if you need it.",
        link=rx.link("Go to Info", href="/"),
        id="no-access",
    )


def notices_banner() -> rx.Component:
    """What needs the user's action (app.services.notices), live, each with the page that fixes it."""
    return rx.vstack(
        rx.foreach(
            NoticesState.notices,
            lambda notice: rx.callout.root(
                rx.callout.icon(rx.icon("triangle-alert")),
                rx.callout.text(notice.message, " ", rx.link(notice.action, href=notice.href, weight="medium")),
                color_scheme="amber",
                size="1",
                id=f"notice-{notice.key}",
            ),
        ),
        spacing="2",
        margin_bottom=rx.cond(NoticesState.notices.length() > 0, "1em", "0"),
        id="notices",
    )


def _shell(content: rx.Component, permission: Permission) -> rx.Component:
    return rx.cond(
        SessionState.signed_in,
        rx.box(
            header(),
            rx.cond(
                SessionState.suspended,
                rx.callout(
                    "This account is suspended: the console is read-only and API calls are refused. "
                    "Contact the service's support to have it reactivated.",
                    icon="lock",
                    color_scheme="red",
                    role="alert",
                    id="suspended-banner",
                ),
            ),
            rx.cond(
                SessionState.viewing,
                rx.callout(
                    rx.hstack(
                        rx.text("Viewing ", rx.text.strong(SessionState.account_name), " as operator — read only"),
                        rx.button(
                            "Exit", size="1", variant="outline", on_click=SessionState.sign_out, id="view-as-exit"
                        ),
                        align="center",
                        justify="between",
                        width="100%",
                    ),
                    icon="eye",
                    color_scheme="amber",
                    role="status",
                    id="view-as-banner",
                ),
            ),
            rx.hstack(
                sidebar(),
                rx.el.main(
                    notices_banner(),
                    rx.cond(_allowed(permission), content, no_access()),
                    class_name="ld-main",
                ),
                # The sidebar's background runs as far down as the page.
                align="stretch",
                spacing="0",
                width="100%",
            ),
            chat_launcher(),
            class_name="ld-shell",
        ),
        rx.center(rx.spinner(size="3"), height="100vh"),
    )


# Every page, (its function, rx.App.add_page's options), added to the app once by app/app.py.
# Not @rx.page: Reflex adds decorated pages again in the production server's forked worker
# ("Page … is being redefined").
PAGES: list[tuple[Callable[[], rx.Component], dict[str, Any]]] = []


def console_page(
    route: str,
    subtitle: str = "",
    *,
    on_load: list,
    action: Callable[[], rx.Component] | None = None,
    **body_props,
) -> Callable[[Callable[[], Sequence[rx.Component]]], Callable[[], rx.Component]]:
    """Register the body of the console page at `route` (see NAV): the page gets the signed-in
    check on load, the shell, and its heading (with `action` at its right) above the body."""
    entry = next(e for e in NAV if e.route == route)

    def decorator(render: Callable[[], Sequence[rx.Component]]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            heading = page_heading(entry.title, subtitle)
            if action is not None:
                heading = rx.hstack(heading, rx.spacer(), action(), align="start", width="100%", wrap="wrap")
            return _shell(page_body(heading, *render(), **body_props), entry.permission)

        page.__name__ = render.__name__
        options = {
            "route": route,
            "title": f"{entry.title} · Ledgerdesk",
            "on_load": [SessionState.load_console, NoticesState.load, ChatState.load, *on_load],
        }
        PAGES.append((page, options))
        return page

    return decorator


def page_heading(title: str, subtitle: str = "") -> rx.Component:
    return rx.vstack(
        rx.heading(title, size="7", as_="h1"),
        rx.text(subtitle, color_scheme="gray") if subtitle else rx.fragment(),
        spacing="1",
        margin_bottom="1.5em",
    )


def page_body(*children: rx.Component, spacing: str = "4", **props) -> rx.Component:
    """A console page's content, top to bottom, as wide as the page (or `max_width` in `props`)."""
    return rx.vstack(*children, spacing=spacing, align="stretch", **props)


def section_heading(title: str) -> rx.Component:
    """The heading of a part of a page."""
    return rx.heading(title, size="4", as_="h2", margin_top="1em")


def section_card(title: str, *children: rx.Component, description: str = "", **props) -> rx.Component:
    """A part of a page in a card: its heading, what it is for, then its content."""
    return rx.card(
        rx.vstack(
            rx.heading(title, size="4", as_="h2"),
            rx.text(description, color_scheme="gray", size="2") if description else rx.fragment(),
            *children,
            spacing="3",
            align="stretch",
        ),
        **props,
    )


def page_message(title: str, *text: rx.Var | str, link: rx.Component, **props) -> rx.Component:
    """A page that only says something (no access, a finished or refused step) and where to go."""
    return rx.vstack(rx.heading(title, size="6", as_="h1"), rx.text(*text), link, spacing="3", **props)


def public_form(title: rx.Var | str, *children: rx.Component, on_submit) -> rx.Component:
    """The form of a public page under its heading, its fields as wide as the card."""
    return rx.form(
        rx.vstack(rx.heading(title, size="6", as_="h1"), *children, spacing="3", align="stretch"),
        on_submit=on_submit,
    )


def sign_in_form(title: str, state, *links: rx.Component) -> rx.Component:
    """An email and password form (customers' sign-in and the operator's), its links below."""
    return public_form(
        title,
        form_messages(state),
        text_field("Email", field_id="email", type="email", auto_complete="username", required=True),
        text_field("Password", field_id="password", type="password", auto_complete="current-password", required=True),
        rx.button("Sign in", type="submit", loading=state.busy == "submit", width="100%", id="sign-in-submit"),
        *links,
        on_submit=state.submit,
    )


def public_page(*, route: str, title: str, on_load: list | None = None):
    """Pages for signed-out visitors (sign-in, password reset, invitations)."""

    def decorator(render: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            return _public_frame(render())

        page.__name__ = render.__name__
        PAGES.append((page, {"route": route, "title": f"{title} · Ledgerdesk", "on_load": on_load}))
        return page

    return decorator


def _public_frame(content: rx.Component) -> rx.Component:
    """The public page's card, its content under the product's name, in the middle of the window."""
    brand = rx.hstack(rx.icon("book-open-check"), rx.heading("Ledgerdesk", size="5"), align="center")
    card = rx.card(rx.vstack(brand, content, spacing="4", align="stretch"), width="100%", max_width="420px", size="4")
    return rx.center(card, min_height="100vh", padding="1em")
