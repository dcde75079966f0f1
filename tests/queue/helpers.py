"""Waiting for the queue, and reading what arrived, for the queue tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mox.queue.queue import Queue, QueuedRecipient
from mox.store import Store


async def wait_until(cond: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def until_empty(q: Queue, timeout: float = 20) -> None:
    """Until every queued message is delivered, failed or dropped."""

    async def empty() -> bool:
        return not await q.messages()

    await wait_until(empty, timeout)


async def until_attempted(q: Queue, timeout: float = 20) -> None:
    """Until the first queued message has had at least one delivery attempt."""

    async def attempted() -> bool:
        msgs = await q.messages()
        return bool(msgs) and msgs[0].attempts >= 1

    await wait_until(attempted, timeout)


def inbox(store: Store, account: str = "alice") -> list[bytes]:
    """The messages in the account's Inbox (none when it has no Inbox yet)."""
    acc = store.account(account)
    mb = acc.get_mailbox("Inbox")
    return [] if mb is None else [acc.read_message(m) for m in acc.list_messages(mb.id)]


async def add_for_bob(q: Queue, data: bytes) -> list[int]:
    """Queue `data` from alice@example.test to bob@remote.test (the queue tests' usual message);
    returns the queue ids."""
    return await q.add(
        account="alice",
        mail_from="alice@example.test",
        recipients=[QueuedRecipient("bob@remote.test")],
        data=data,
    )
