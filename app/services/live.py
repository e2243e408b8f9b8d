"""Live updates, the publishing side: which accounts' figures or payments changed, told to every
web process within FLUSH_SECONDS of the commit, however many changes there were.

A change is marked on the transaction (`mark`) and counts only once it commits (an `after_commit`
hook; a rollback forgets it); code outside an ORM session calls `changed` after its own commit.
Each process collects the changed accounts and sends them at most every FLUSH_SECONDS in one
message (`run_publisher`): with `REDIS_URL`, on a Redis channel every web process listens to
(Redis is already what several workers need for Reflex's state, and it works on SQLite and
PostgreSQL alike); without it, there is one process, and the message goes straight to its
listener. What a web process does with the message is app.state.live.

What is told is a topic: an account's id for its figures and payments; `chat_topic` for its
chat, so a message refreshes only what shows chats; `OPERATOR_INBOX` for the back office's
conversations, any account's."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("ledgerdesk.live")

CHANNEL = "ledgerdesk:live"
FLUSH_SECONDS = 0.25
_SESSION_KEY = "live_accounts"

# The back office's conversations (account ids start at 1).
OPERATOR_INBOX = 0

Listener = Callable[[set[int]], Awaitable[None]]

_lock = threading.Lock()
_pending: set[int] = set()
# Without Redis: this process's listener (the web process's push loop), if it has one.
_local_listeners: list[Listener] = []


def chat_topic(account_id: int) -> int:
    return -account_id


def changed(account_id: int) -> None:
    """The account's figures or payments changed, committed: cheap enough for every API call."""
    with _lock:
        _pending.add(account_id)


def mark(session: Session, account_id: int) -> None:
    """The account changes in this transaction: told once it commits."""
    session.info.setdefault(_SESSION_KEY, set()).add(account_id)


# Both hooks also fire when a savepoint (begin_nested) ends, inside the transaction that counts.
@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if not session.in_nested_transaction():
        for account_id in session.info.pop(_SESSION_KEY, ()):
            changed(account_id)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_SESSION_KEY, None)


def _take_pending() -> set[int]:
    with _lock:
        taken = set(_pending)
        _pending.clear()
    return taken


def encode(account_ids: set[int]) -> str:
    return ",".join(str(account_id) for account_id in sorted(account_ids))


def decode(message: bytes | str) -> set[int]:
    text = message.decode() if isinstance(message, bytes) else message
    return {int(part) for part in text.split(",") if part.removeprefix("-").isdigit()}


async def run_publisher(redis_url: str) -> None:
    """Send this process's changed accounts every FLUSH_SECONDS (a lifespan task of every process
    that changes accounts: web workers and job workers)."""
    client = aioredis.from_url(redis_url) if redis_url else None
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        account_ids = _take_pending()
        if not account_ids:
            continue
        try:
            if client is not None:
                await client.publish(CHANNEL, encode(account_ids))
            else:
                for listener in _local_listeners:
                    await listener(account_ids)
        except Exception:  # Redis restarting: the next change is told again
            log.warning("live update for %d accounts not sent", len(account_ids), exc_info=True)


async def listen(redis_url: str, listener: Listener) -> None:
    """Call `listener` with each message's accounts, for the life of the process."""
    if not redis_url:
        _local_listeners.append(listener)
        return
    while True:
        client = aioredis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await listener(decode(message["data"]))
        except Exception:  # Redis restarting: subscribe again
            log.warning("live updates: Redis subscription lost, subscribing again", exc_info=True)
            await asyncio.sleep(1)
        finally:
            await client.aclose()
