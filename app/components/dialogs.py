"""The console's dialogs: the confirmation of a page (`confirm_dialog`) and a form in a dialog
(`form_dialog`), with one row of buttons."""

from __future__ import annotations

import reflex as rx


def dialog_actions(
    confirm: rx.Component, busy: rx.Var | bool, *, close=rx.alert_dialog.cancel, **props
) -> rx.Component:
    """Cancel (closes the dialog with `close`, disabled while `busy`) and the dialog's own action,
    right-aligned."""
    return rx.flex(
        close(rx.button("Cancel", type="button", variant="soft", color_scheme="gray", disabled=busy)),
        confirm,
        spacing="3",
        justify="end",
        width="100%",
        **props,
    )


def confirm_button(
    state, *, color_scheme: str | None = "red", button_id: str | None = None, request_key: rx.Var | None = None
) -> rx.Component:
    """The confirm button of `confirm_dialog`: its label, busy (and disabled) while confirming; a
    color scheme of None gives it the accent color. A confirmation that charges passes its
    `request_key` (`app.state.card_payment`), which the click sends as `confirm`'s argument."""
    props = {"color_scheme": color_scheme} if color_scheme else {}
    if button_id:
        props["id"] = button_id
    on_click = state.confirm(request_key) if request_key is not None else state.confirm
    return rx.button(state.confirm_button, loading=state.confirming, on_click=on_click, **props)


def confirm_dialog(
    state,
    *,
    action: rx.Component | None = None,
    color_scheme: str | None = "red",
    blocker: rx.Var | None = None,
    blocker_id: str = "confirm-blocker",
    body: rx.Component | None = None,
    button_id: str | None = None,
    max_width: str = "520px",
    request_key: rx.Var | None = None,
) -> rx.Component:
    """The page's one confirmation dialog; `state` mixes in `app.state.confirm.ConfirmState` and
    has a `confirm` handler. `action` replaces the confirm button (e.g. a link when something is
    missing). While `blocker` (a state var) is not "", the dialog says why the action cannot be
    done, with only a Close button. `body` is shown under the lines (e.g. a choice the
    confirmation takes); a `color_scheme` of None gives the button the accent color; a
    confirmation that charges passes its `request_key` (see `confirm_button`)."""
    actions = dialog_actions(
        action
        if action is not None
        else confirm_button(state, color_scheme=color_scheme, button_id=button_id, request_key=request_key),
        state.confirming,
        margin_top="1em",
    )
    if blocker is not None:
        actions = rx.cond(
            blocker != "",
            rx.vstack(
                rx.callout(blocker, icon="triangle_alert", color_scheme="orange", id=blocker_id, width="100%"),
                rx.flex(
                    rx.alert_dialog.cancel(rx.button("Close", variant="soft", color_scheme="gray")),
                    justify="end",
                    width="100%",
                ),
                spacing="3",
                margin_top="1em",
            ),
            actions,
        )
    return _confirmation(
        state,
        actions,
        body=body,
        max_width=max_width,
        open=(state.confirm_action != "") & ~state.confirm_hidden,
        on_open_change=state.confirm_open_change,
    )


def change_confirmation(state, payment_methods_path: str, request_key: rx.Var | None = None) -> rx.Component:
    """The confirmation of a plan, seat or product change: its amounts (`confirm_lines`) before
    anything happens, or, when a payment method is missing (`confirm_action` "card_required"),
    the way to add one. `state` mixes in `app.state.confirm.ConfirmState`; a change that charges
    passes its `request_key` (see `confirm_button`)."""
    return confirm_dialog(
        state,
        action=rx.cond(
            state.confirm_action == "card_required",
            rx.link(rx.button("Go to Payment Methods"), href=payment_methods_path),
            confirm_button(state, color_scheme=None, request_key=request_key),
        ),
    )


def _confirmation(
    state, actions: rx.Component, *, body: rx.Component | None = None, max_width: str = "520px", **root_props
) -> rx.Component:
    """A confirmation dialog: title, lines, `body` and error from a state with confirm_title,
    confirm_lines and confirm_error, then `actions`."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(state.confirm_title),
            rx.alert_dialog.description(
                rx.vstack(rx.foreach(state.confirm_lines, lambda line: rx.text(line)), spacing="2", id="confirm-lines"),
                as_child=True,
            ),
            rx.box(body, margin_top="1em") if body is not None else rx.fragment(),
            rx.cond(
                state.confirm_error != "",
                rx.text(state.confirm_error, color_scheme="red", size="2", role="alert", id="confirm-error"),
            ),
            actions,
            max_width=max_width,
        ),
        **root_props,
    )


def form_dialog(
    title: rx.Component | str,
    description: rx.Component | str,
    *fields: rx.Component,
    open: rx.Var,
    on_open_change,
    on_submit,
    button: str,
    busy: rx.Var,
    max_width: str = "480px",
) -> rx.Component:
    """A form in a dialog: its fields, errors next to them, then Cancel and the submit `button`
    (busy while `busy`); the server's checks name what is wrong, not the browser's bubbles."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(description, margin_bottom="1em"),
            rx.form(
                rx.vstack(
                    *fields,
                    dialog_actions(rx.button(button, type="submit", loading=busy), busy, close=rx.dialog.close),
                    spacing="3",
                    align="stretch",
                ),
                on_submit=on_submit,
                no_validate=True,
            ),
            max_width=max_width,
        ),
        open=open,
        on_open_change=on_open_change,
    )
