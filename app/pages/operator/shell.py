"""The back office's frame: its header (who is signed in, sign out), its two links, and the one
decorator its pages are registered with (the operator sign-in check on load)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import reflex as rx

from app.components.layout import PAGES, page_body, page_heading
from app.state.operator import OperatorShellState

NAV = (("/operator", "Accounts"), ("/operator/api-keys", "API keys"))
CONVERSATIONS = "/operator/conversations"


def _header() -> rx.Component:
    return rx.el.header(
        rx.hstack(
            rx.icon("shield"),
            rx.heading("Ledgerdesk operator", size="4"),
            *[rx.link(label, href=route, class_name="ld-nav-link") for route, label in NAV],
            rx.link(
                "Conversations",
                rx.cond(
                    OperatorShellState.unread_chats > 0,
                    rx.badge(
                        OperatorShellState.unread_chats,
                        color_scheme="red",
                        variant="solid",
                        margin_left="0.4em",
                        id="operator-unread-chats",
                    ),
                ),
                href=CONVERSATIONS,
                class_name="ld-nav-link",
                id="operator-conversations-link",
            ),
            rx.spacer(),
            rx.text(OperatorShellState.operator_name, id="operator-name"),
            rx.button("Sign out", variant="ghost", on_click=OperatorShellState.sign_out, id="operator-sign-out"),
            align="center",
            spacing="4",
            width="100%",
        ),
        class_name="ld-header",
    )


def operator_page(
    route: str, title: str, subtitle: str = "", *, on_load: list
) -> Callable[[Callable[[], Sequence[rx.Component]]], Callable[[], rx.Component]]:
    def decorator(render: Callable[[], Sequence[rx.Component]]) -> Callable[[], rx.Component]:
        def page() -> rx.Component:
            return rx.cond(
                OperatorShellState.signed_in,
                rx.box(
                    _header(),
                    rx.el.main(page_body(page_heading(title, subtitle), *render()), class_name="ld-main"),
                    class_name="ld-shell",
                ),
                rx.center(rx.spinner(size="3"), height="100vh"),
            )

        page.__name__ = render.__name__
        PAGES.append(
            (
                page,
                {
                    "route": route,
                    "title": f"{title} · Ledgerdesk operator",
                    "on_load": [OperatorShellState.load_operator, *on_load],
                },
            )
        )
        return page

    return decorator
