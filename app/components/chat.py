"""The chat box (seed 002): a launcher at the bottom right of every console page, with the unread
count on it, that opens the account's conversation with the operator's staff (ChatState). The
back office shows the same lines (`chat_log`)."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, field_error, state_form
from app.services.chat import MAX_LENGTH, ChatLine
from app.state.chat import ChatState


def chat_line(line: ChatLine, *, ours: rx.Var | bool) -> rx.Component:
    """One message: who and when above its text, which is shown as typed (text, never markup)."""
    return rx.box(
        rx.hstack(
            rx.text(line.author, size="1", weight="medium"),
            rx.cond(line.from_support, rx.badge("Support", size="1", variant="soft")),
            rx.text(line.sent, size="1", color_scheme="gray", high_contrast=True),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.text(line.body, size="2", class_name="ld-chat-body"),
        class_name="ld-chat-line",
        data_ours=rx.cond(ours, "true", "false"),
    )


def chat_log(lines, *, ours, empty: str, log_id: str) -> rx.Component:
    """The messages, oldest first, kept scrolled to the newest (column-reverse), announced as they
    arrive (role log). `ours(line)` says which side a line is on."""
    return rx.box(
        rx.cond(
            lines.length() > 0,
            rx.vstack(rx.foreach(lines, lambda line: chat_line(line, ours=ours(line))), spacing="2", align="stretch"),
            rx.text(empty, size="2", color_scheme="gray", high_contrast=True),
        ),
        class_name="ld-chat-log",
        role="log",
        aria_label="Messages",
        id=log_id,
        tab_index=0,
    )


def chat_form(state, *, label: str, button: str, form_id: str, auto_focus: bool = False) -> rx.Component:
    """A message box and its send button, for a state with FormState and `send`; the box starts
    empty again after a message is sent (the state remounts the form)."""
    return state_form(
        state,
        rx.vstack(
            rx.el.label(label, html_for=f"{form_id}-body", class_name="ld-visually-hidden"),
            rx.text_area(
                id=f"{form_id}-body",
                name="body",
                placeholder=label,
                max_length=MAX_LENGTH,
                rows="3",
                required=True,
                auto_focus=auto_focus,
                width="100%",
            ),
            field_error(error_of(state, "body"), f"{form_id}-body-error"),
            rx.button(button, type="submit", loading=state.busy == "send", align_self="end"),
            spacing="2",
            align="stretch",
        ),
        on_submit=state.send,
        id=form_id,
    )


def chat_launcher() -> rx.Component:
    state = ChatState
    label = rx.cond(state.unread > 0, "Chat with support, " + state.unread.to_string() + " unread", "Chat with support")
    return rx.popover.root(
        rx.popover.trigger(
            rx.el.button(
                rx.icon("message-circle", size=24),
                rx.cond(state.unread > 0, rx.el.span(state.unread, class_name="ld-chat-badge", id="chat-unread")),
                type="button",
                class_name="ld-chat-launcher",
                id="chat-launcher",
                aria_label=label,
                title="Chat with support",
            )
        ),
        rx.popover.content(
            rx.vstack(
                rx.heading("Chat with support", size="3", as_="h2"),
                rx.text(
                    "Our team answers here, usually within a business day. Everyone in your account sees "
                    "this conversation.",
                    size="1",
                    color_scheme="gray",
                    high_contrast=True,
                ),
                rx.cond(state.error != "", rx.text(state.error, size="2", color_scheme="red", role="alert")),
                chat_log(
                    state.lines,
                    ours=lambda line: ~line.from_support,
                    empty="No messages yet. Ask us anything about your account or billing.",
                    log_id="chat-log",
                ),
                chat_form(state, label="Your message", button="Send", form_id="chat-form", auto_focus=True),
                spacing="3",
                align="stretch",
            ),
            side="top",
            align="end",
            class_name="ld-chat-panel",
            aria_label="Chat with support",
        ),
        open=state.showing,
        on_open_change=state.open_change,
    )
