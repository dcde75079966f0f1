"""Webhook retries and bounds, without a mail server: a real loopback receiver, and the waits
between attempts observed instead of slept."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from mox.config.load import load_config
from mox.queue.db import QueueMsg
from mox.store import Store
from mox.webhook import Webhooks, incoming, outgoing_payload
from tests.conftest import minimal_config
from tests.webapi.hooks import Receiver

MESSAGE = (
    b"From: Someone <someone@example.org>\r\nTo: alice@example.test\r\n"
    b"Subject: units\r\nMessage-Id: <u1@example.org>\r\n\r\nbody\r\n"
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def make(tmp_path: Path, receiver: Receiver, **kw: Any) -> tuple[Webhooks, Store, list[float]]:
    data = minimal_config()
    data["accounts"]["alice"]["incoming_webhook"] = {
        "url": receiver.url("/in"),
        "authorization": "Basic dXNlcjpwdw==",
    }
    path = tmp_path / "mox.toml"
    path.write_text(tomlkit.dumps(data))
    store = Store(load_config(path).data_dir)
    hooks = Webhooks(load_config(path), store, **kw)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    hooks.sleep = sleep
    hooks.register()
    return hooks, store, waits


async def settle(hooks: Webhooks) -> None:
    for _ in range(400):
        if hooks.pending == 0:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("webhook still pending")


async def test_retries_back_off_doubling_capped_and_give_up(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 10
    hooks, store, waits = make(tmp_path, receiver, max_attempts=5, max_wait=300)
    incoming(store, "alice", "Inbox", 7, MESSAGE, {"mail_from": "someone@example.org"})
    await settle(hooks)
    assert len(receiver.hits) == 5  # bounded: gives up after max_attempts
    assert waits == [60, 120, 240, 300]  # 1 minute doubling, capped
    hit = receiver.hits[0]
    assert hit.headers["Authorization"] == "Basic dXNlcjpwdw=="
    assert hit.body["Subject"] == "units"
    assert hit.body["Meta"]["UID"] == 7
    assert hit.body["Meta"]["MailFrom"] == "someone@example.org"
    await hooks.stop()
    await store.aclose()


async def test_success_after_retry_stops(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [503, 500]
    hooks, store, waits = make(tmp_path, receiver)
    incoming(store, "alice", "Inbox", 1, MESSAGE, {})
    await settle(hooks)
    assert len(receiver.hits) == 3
    assert waits == [60, 120]
    await hooks.stop()
    await store.aclose()


async def test_pending_events_bounded_and_no_hook_no_post(
    tmp_path: Path, receiver: Receiver
) -> None:
    hooks, store, _ = make(tmp_path, receiver, max_pending=2)
    for uid in range(1, 6):  # all spawned before any runs: only two are kept
        incoming(store, "alice", "Inbox", uid, MESSAGE, {})
    assert hooks.pending == 2
    incoming(store, "nobody", "Inbox", 9, MESSAGE, {})  # no such account: nothing
    await settle(hooks)
    assert sorted(h.body["Meta"]["UID"] for h in receiver.hits) == [1, 2]
    await hooks.stop()
    incoming(store, "alice", "Inbox", 10, MESSAGE, {})  # stopped: unregistered, nothing sent
    assert hooks.pending == 0
    await store.aclose()


def test_outgoing_payload_reply_codes() -> None:
    m = QueueMsg(
        id=3, base_id="b", account="alice", mail_from="alice@example.test",
        rcpt="x@remote.test", rcpt_domain="remote.test", path="msg/b", size=1,
        smtputf8=False, has_8bit=False, requiretls=None, dsn_ret=None, dsn_envid=None,
        notify=None, orcpt=None, queued="", next_attempt="", attempts=1, max_attempts=8,
        last_error="", hold=False, delay_dsn_sent=False, transport=None,
    )  # fmt: skip
    header = b"Subject: s\r\nMessage-Id: <m@x>\r\n"
    p = outgoing_payload(m, "failed", "452 4.2.2 mailbox full", header)
    assert (p["Event"], p["SMTPCode"], p["SMTPEnhancedCode"]) == ("failed", 452, "4.2.2")
    assert (p["MessageID"], p["Subject"], p["QueueMsgID"]) == ("<m@x>", "s", 3)
    p = outgoing_payload(m, "dropped", None, header)
    assert (p["Event"], p["SMTPCode"], p["Error"]) == ("canceled", 0, "")


async def test_unreachable_receiver_is_retried(tmp_path: Path, receiver: Receiver) -> None:
    hooks, store, waits = make(tmp_path, receiver, max_attempts=3)
    receiver.stop()  # nobody listens on the URL's port now
    incoming(store, "alice", "Inbox", 1, MESSAGE, {})
    await settle(hooks)
    assert waits == [60, 120]  # three attempts, each refused
    assert receiver.hits == []
    await hooks.stop()
    await store.aclose()


async def test_pending_event_survives_restart(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [500]
    hooks, store, _ = make(tmp_path, receiver, max_attempts=5)
    blocked = asyncio.Event()

    async def sleep_forever(seconds: float) -> None:
        blocked.set()
        await asyncio.Event().wait()  # the first backoff never ends: "the server stops"

    hooks.sleep = sleep_forever
    incoming(store, "alice", "Inbox", 4, MESSAGE, {})
    await asyncio.wait_for(blocked.wait(), 10)
    await hooks.stop()  # one failed attempt; the event is stored
    assert len(receiver.hits) == 1
    conn = sqlite3.connect(tmp_path / "data" / "queue" / "index.db")
    try:
        ((attempts, last_error),) = conn.execute(
            "SELECT attempts, last_error FROM webhooks"
        ).fetchall()
    finally:
        conn.close()
    assert (attempts, last_error) == (1, "HTTP status 500")

    # "Restart": a new Webhooks resumes the stored event, waiting out the rest of its backoff.
    again, store2, waits = make(tmp_path, receiver)
    await asyncio.sleep(0.1)
    await settle(again)
    first, second = receiver.hits
    assert first.body == second.body
    assert first.headers["X-Mox-Webhook-ID"] == second.headers["X-Mox-Webhook-ID"]
    assert (first.headers["X-Mox-Webhook-Attempt"], second.headers["X-Mox-Webhook-Attempt"]) == (
        "1",
        "2",
    )
    (wait,) = waits
    assert 55 < wait <= 60  # what was left of the 60 s backoff
    await again.stop()
    conn = sqlite3.connect(tmp_path / "data" / "queue" / "index.db")
    try:
        assert conn.execute("SELECT count(*) FROM webhooks").fetchone() == (0,)  # delivered
    finally:
        conn.close()
    await store.aclose()
    await store2.aclose()


def test_outgoing_delayed_event() -> None:
    m = QueueMsg(
        id=5, base_id="b", account="alice", mail_from="alice@example.test",
        rcpt="x@remote.test", rcpt_domain="remote.test", path="msg/b", size=1,
        smtputf8=False, has_8bit=False, requiretls=None, dsn_ret=None, dsn_envid=None,
        notify=None, orcpt=None, queued="", next_attempt="", attempts=1, max_attempts=8,
        last_error="", hold=False, delay_dsn_sent=False, transport=None,
    )  # fmt: skip
    p = outgoing_payload(m, "delayed", "451 4.3.0 try again", b"Subject: s\r\n")
    assert (p["Event"], p["SMTPCode"], p["SMTPEnhancedCode"]) == ("delayed", 451, "4.3.0")
