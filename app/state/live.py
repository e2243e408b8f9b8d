"""Live updates, the browser side: which tabs this process serves show which account, and fresh
figures pushed to them when that account changes (app.services.live says which changed).

A page state whose figures move mixes in `LiveState`, calls `_watch_live` when it loads (with the
topic it shows when that is not the account's figures: its chat, the operator's inbox) and says
in `_live_refresh` what to read again. The banner (`NoticesState`, on every console page) loads
first and starts the tab's list afresh, so a tab is refreshed only for the page it shows. Pushes
are coalesced: at most one every PUSH_INTERVAL for each tab, however many calls the API takes. A
push re-reads through `acting`, like any event: an ended session or a role that may no longer
see the page gets nothing. A closed tab is forgotten the next time its account changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import reflex as rx
from reflex.istate.manager.token import BaseStateToken

from app.config import get_settings
from app.errors import DomainError
from app.services import live
from app.services.notices import Notice, notices_for
from app.services.permissions import Permission
from app.state.session import acting

if TYPE_CHECKING:
    from reflex.app import App

log = logging.getLogger("ledgerdesk.live")

# Every half second at most: within the second the issue asks, at half the cost of every 250 ms.
PUSH_INTERVAL = 0.5

# client token → (the account it shows, the states to refresh and the topic each shows)
_tabs: dict[str, tuple[int, dict[type[LiveState], int]]] = {}
_changed: set[int] = set()
_wake = asyncio.Event()


class LiveState(rx.State, mixin=True):
    def _watch_live(self, account_id: int, *, first: bool = False, topic: int | None = None) -> None:
        token = self.router.session.client_token
        if not token:
            return
        shown = _tabs.get(token)
        if first or shown is None or shown[0] != account_id:
            shown = _tabs[token] = (account_id, {})
        shown[1][type(self)] = account_id if topic is None else topic

    def _live_refresh(self) -> None:
        """Read again what moves on this page; a DomainError leaves it as it is."""
        raise NotImplementedError


class NoticesState(LiveState, rx.State):
    notices: rx.Field[list[Notice]] = rx.field(default_factory=list)

    def _read_notices(self) -> int:
        with acting(self, Permission.INFO_VIEW) as (actor, session):
            self.notices = notices_for(session, actor)
        return actor.account_id

    @rx.event
    def load(self):
        """On every console page, after the signed-in check: the banner, and this tab's live updates."""
        try:
            account_id = self._read_notices()
        except DomainError:
            self.notices = []
            return
        self._watch_live(account_id, first=True)

    def _live_refresh(self) -> None:
        self._read_notices()


async def _changed_accounts(account_ids: set[int]) -> None:
    _changed.update(account_ids)
    _wake.set()


async def _refresh_tab(app: App, token: str, states: set[type[LiveState]]) -> None:
    assert app.event_namespace is not None
    if not await app.event_namespace._token_manager.is_token_connected(token):
        _tabs.pop(token, None)
        return
    classes = list(states)
    # One state lock and one write of the tab's states for all of them.
    async with app.modify_state(BaseStateToken(ident=token, cls=classes[0])) as root:
        for cls in classes:
            state = await root.get_state(cls)
            with contextlib.suppress(DomainError):  # the session ended, or the page is no longer allowed
                state._live_refresh()


async def run_live_updates(app: App) -> None:
    """Lifespan task of every web process: send this process's changes, receive everyone's, and
    push to this process's tabs."""
    redis_url = get_settings().redis_url
    log.info("live updates %s", "through Redis" if redis_url else "within this process")
    tasks = [
        asyncio.create_task(live.run_publisher(redis_url)),
        asyncio.create_task(live.listen(redis_url, _changed_accounts)),
    ]
    try:
        while True:
            await _wake.wait()
            _wake.clear()
            topics = set(_changed)
            _changed.clear()
            tabs = [
                (token, {cls for cls, topic in states.items() if topic in topics})
                for token, (_account, states) in list(_tabs.items())
            ]
            tabs = [(token, states) for token, states in tabs if states]
            results = await asyncio.gather(*(_refresh_tab(app, t, s) for t, s in tabs), return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    log.warning("live update not pushed", exc_info=result)
            await asyncio.sleep(PUSH_INTERVAL)
    finally:
        for task in tasks:
            task.cancel()
