"""The card of a page's one uploaded image (the Company logo, the Profile picture): the image or
a stand-in, its label, an upload button, a remove button while there is an image, the rules and
the error. The page's state mixes in `app.state.upload.ImageUploadState`."""

from __future__ import annotations

import reflex as rx

from app.components.forms import error_of, field_error
from app.services.company import LOGO_MAX_BYTES

# What the file chooser offers; the server decides by the content (app/services/company.py).
IMAGE_ACCEPT = {"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/svg+xml": [".svg"]}


def image_upload(
    state,
    *,
    label: str,
    hint: str,
    preview: rx.Component,
    can_edit: rx.Var | bool = True,
    read_only_note: str = "",
) -> rx.Component:
    """The image's field (`IMAGE.field`, "logo") names it in the buttons ("Upload logo") and in
    the ids of the upload area (`logo-upload`) and the error (`logo-error`)."""
    noun = state.IMAGE.field
    upload_id = f"{noun}-upload"
    error = error_of(state, noun)
    controls = rx.vstack(
        rx.hstack(
            rx.upload.root(
                rx.button(
                    rx.icon("upload", size=16),
                    f"Upload {noun}",
                    variant="soft",
                    loading=state.busy == "upload",
                    type="button",
                ),
                id=upload_id,
                accept=IMAGE_ACCEPT,
                max_files=1,
                max_size=LOGO_MAX_BYTES,
                multiple=False,
                on_drop=state.upload_image(rx.upload_files(upload_id=upload_id)),
                on_drop_rejected=state.image_rejected,
            ),
            rx.cond(
                state.image_url != "",
                rx.button(f"Remove {noun}", variant="ghost", color_scheme="red", on_click=state.remove_image),
            ),
            spacing="3",
            align="center",
        ),
        rx.text(hint, size="1", color_scheme="gray"),
        spacing="2",
    )
    return rx.card(
        rx.hstack(
            preview,
            rx.vstack(
                rx.text(label, class_name="ld-label"),
                controls
                if can_edit is True
                else rx.cond(can_edit, controls, rx.text(read_only_note, size="2", color_scheme="gray")),
                field_error(error, f"{noun}-error"),
                spacing="2",
            ),
            spacing="5",
            align="center",
        ),
    )


def image_preview(state, *, alt: str, size: str, empty: rx.Component, **props) -> rx.Component:
    """The uploaded image (`logo-preview`), or `empty` when there is none."""
    return rx.cond(
        state.image_url != "",
        rx.image(src=state.image_url, alt=alt, width=size, height=size, id=f"{state.IMAGE.field}-preview", **props),
        empty,
    )
