"""The account's logo as an uploaded image (`ImageUploadState`): saved and removed with
company.edit, shown in the header at once. The Company page's state mixes in `AccountLogo`;
`HeaderLogoState` is the header's, which uploads a logo chosen by clicking the header's logo
(seed 002: "You can update this by clicking on the image")."""

from __future__ import annotations

from typing import ClassVar

import reflex as rx

from app.services import company
from app.services.permissions import Permission
from app.state.session import SessionState, acting
from app.state.upload import Image, ImageUploadState


class AccountLogo(ImageUploadState, mixin=True):
    IMAGE: ClassVar[Image] = Image(
        "logo", company.LOGO_RULES, saved="The new logo is saved.", removed="The logo is removed."
    )

    def _save_image(self, content: bytes) -> tuple[str, str]:
        with acting(self, Permission.COMPANY_EDIT) as (actor, session):
            previous = company.save_logo(session, actor, content)
            return previous, company.company_details(session, actor).logo_url

    def _remove_image(self) -> str:
        with acting(self, Permission.COMPANY_EDIT) as (actor, session):
            return company.remove_logo(session, actor)

    async def _refresh_header(self) -> None:
        header = await self.get_state(SessionState)
        header.logo_url = self.image_url


class HeaderLogoState(AccountLogo, rx.State):
    """The header's logo upload: its error (a file too big, not an image) is shown under the header."""
