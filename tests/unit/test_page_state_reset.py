"""The tab's page states belong to one sign-in: another session seen by an event empties them."""

import asyncio

import reflex as rx

from app import pages  # noqa: F401  registers every page state
from app.pages.api_keys import ApiKeysState
from app.pages.team import TeamState
from app.state.session import ActorChangeReset, SessionState


async def _event_with_cookie(root: rx.State, cookie: str) -> None:
    root.router_data = root._update_router_vars({"headers": {"cookie": cookie}}, {})
    await ActorChangeReset().preprocess(None, root, None)  # type: ignore[arg-type]


async def _loaded_for_someone(root: rx.State) -> tuple[SessionState, ApiKeysState]:
    header = await root.get_state(SessionState)
    header.user_email, header.signed_in = "owner@example.com", True
    keys = await root.get_state(ApiKeysState)
    keys.created_key = "ld_secret_shown_once"
    return header, keys


def test_page_states_are_kept_for_the_same_sign_in_and_emptied_for_another_or_none():
    async def scenario() -> None:
        root = rx.State(_reflex_internal_init=True)
        await _event_with_cookie(root, "ld_session=first")
        header, keys = await _loaded_for_someone(root)
        await _event_with_cookie(root, "other=1; ld_session=first")
        assert keys.created_key == "ld_secret_shown_once" and header.signed_in

        await _event_with_cookie(root, "ld_session=second")
        assert keys.created_key == "" and header.user_email == "" and not header.signed_in
        # also the states no event of this tab had loaded yet
        assert (await root.get_state(TeamState)).dict() == TeamState(_reflex_internal_init=True).dict()

        header, keys = await _loaded_for_someone(root)
        await _event_with_cookie(root, "")
        assert keys.created_key == "" and header.user_email == ""

    asyncio.run(scenario())
