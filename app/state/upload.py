"""The one uploaded image of a page (the Company logo, the Profile picture), mixed into its
state and drawn by `app.components.upload.image_upload`: its URL, uploading, removing and a
file the browser refuses, with the error under the image (`errors[IMAGE.field]`).

The page's state names the image (`IMAGE: ClassVar[Image] = Image("logo", ...)`; without
ClassVar Reflex would make it a state var) and does the two writes, each checking its own
permission with `acting`:

    def _save_image(self, content: bytes) -> tuple[str, str]:  # (previous file, new URL)
    def _remove_image(self) -> str:                            # the previous file
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import reflex as rx

from app.services.company import LOGO_MAX_BYTES, discard_file
from app.state.events import event
from app.state.form import FormState


@dataclass(frozen=True)
class Image:
    field: str
    rules: str
    saved: str
    removed: str


class ImageUploadState(FormState, mixin=True):
    IMAGE: ClassVar[Image]
    image_url: rx.Field[str] = rx.field("")

    def _save_image(self, content: bytes) -> tuple[str, str]:
        raise NotImplementedError

    def _remove_image(self) -> str:
        raise NotImplementedError

    async def _refresh_header(self) -> None:
        """Show the change in the console's header too."""

    @event
    async def upload_image(self, files: list[rx.UploadFile]):
        if not files:
            self._clear_messages()
            return
        with self._attempt("upload", field=self.IMAGE.field):
            yield
            # One byte over the limit is enough to refuse the file.
            previous, self.image_url = self._save_image(await files[0].read(LOGO_MAX_BYTES + 1))
            discard_file(previous)
            self.notice = self.IMAGE.saved
            await self._refresh_header()

    @rx.event
    def image_rejected(self, _rejected: list[dict]):
        self._clear_messages()
        self.errors = {self.IMAGE.field: self.IMAGE.rules}

    @rx.event
    async def remove_image(self):
        with self._attempt("remove", field=self.IMAGE.field):
            discard_file(self._remove_image())
            self.image_url = ""
            self.notice = self.IMAGE.removed
            await self._refresh_header()
