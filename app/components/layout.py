"""The console shell (header and sidebar) and the one decorator every page is registered with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from typing import Any

import reflex as rx

from app.services.navigation import NAV, SECTIONS, ConsolePage
from app.services.permissions import Permission
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


def sidebar() -> rx.Component:
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
        class_name="ld-sidebar",
        aria_label="Console",
    )


def header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.cond(
                SessionState.logo_url != "",
                rx.image(src=SessionState.logo_url, alt="Account logo", class_name="ld-logo", id="header-logo"),
                rx.box(rx.icon("building-2", size=22), class_name="ld-logo ld-logo-empty"),
            ),
            rx.vstack(
                rx.text(SessionState.account_name, weight="bold", id="header-account-name"),
                rx.text(
                    "Account ID ", SessionState.account_public_id, size="1", color_scheme="gray", id="header-account-id"
                ),
                spacing="0",
            ),
            rx.spacer(),
            rx.badge(SessionState.plan_name, " plan", variant="soft", id="header-plan"),
            rx.cond(
                SessionState.past_due,
                rx.link(
                    rx.badge("Past due", color_scheme="red", variant="solid", id="header-past-due"),
                    href="/billing/invoices",
                ),
            ),
            rx.badge(SessionState.role_name, color_scheme="gray", id="header-role"),
            rx.menu.root(
                rx.menu.trigger(
                    rx.button(
                        rx.cond(
                            SessionState.picture_url != "",
                            rx.image(
                                src=SessionState.picture_url, alt="", class_name="ld-user-picture", id="header-picture"
                            ),
                            rx.icon("circle-user", size=16),
                        ),
                        SessionState.user_name,
                        variant="ghost",
                        id="user-menu",
                    )
                ),
                rx.menu.content(
                    rx.menu.item(SessionState.user_email, disabled=True),
                    rx.menu.separator(),
                    rx.menu.item("Your profile", on_click=rx.redirect("/profile"), id="your-profile"),
                    rx.menu.item("Sign out", on_click=SessionState.sign_out, id="sign-out"),
                ),
            ),
            align="center",
            spacing="3",
            width="100%",
        ),
        class_name="ld-header",
    )


def no_access() -> rx.Component:
    return page_message(
        "No access",
        "Your role does not include this page. Ask an owner or admin of your account if you need it.",
        link=rx.link("Go to Info", href="/"),
        id="no-access",
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
            rx.hstack(
                sidebar(),
                rx.el.main(
                    rx.cond(_allowed(permission), content, no_access()),
                    class_name="ld-main",
                ),
                align="start",
                spacing="0",
                width="100%",
            ),
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
                heading = rx.hstack(heading, rx.spacer(), action(), align="start", width="100%")
            return _shell(page_body(heading, *render(), **body_props), entry.permission)

        page.__name__ = render.__name__
        options = {
            "route": route,
            "title": f"{entry.title} · Ledgerdesk",
            "on_load": [SessionState.load_console, *on_load],
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
