"""The outgoing queue against real SMTP servers on loopback (aiosmtpd as the remote MTA).

DNS answers here come from MockResolver (beside the end-to-end tests with Knot/Unbound in
test_queue_dns.py); the SMTP sessions, files and database are real.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mox.config.load import LoadedConfig, parse_config
from mox.dns.resolver import MockResolver
from mox.queue.queue import Queue, QueuedRecipient
from mox.store import Store
from tests.conftest import minimal_config
from tests.queue.helpers import add_for_bob, inbox, until_attempted, until_empty, wait_until
from tests.queue.remote import Remote

MESSAGE = (
    b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: queued\r\n"
    b"Message-Id: <q1@example.test>\r\n\r\nhello remote\r\n"
)
DNS = {
    ("remote.test", "MX"): ["10 mx.remote.test."],
    ("mx.remote.test", "A"): ["127.0.0.1"],
    ("nullmx.test", "MX"): ["0 ."],
}


def config(tmp_path: Path, port: int, **queue: Any) -> LoadedConfig:
    data = minimal_config()
    data["queue"] = {"direct_port": port, "first_retry_seconds": 0.2, **queue}
    return parse_config(data, tmp_path / "mox.toml")


@pytest.fixture
def remote() -> Iterator[Remote]:
    r = Remote()
    yield r
    r.stop()


async def test_delivered_and_retired(tmp_path: Path, remote: Remote, store: Store) -> None:
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start()
    try:
        ids = await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("bob@remote.test"), QueuedRecipient("carol@remote.test")],
            data=MESSAGE,
        )
        assert len(ids) == 2
        assert {m.rcpt for m in await q.messages()} == {"bob@remote.test", "carol@remote.test"}

        await until_empty(q)
        (got,) = remote.handler.received  # one transaction for both recipients
        assert got.rcpts == ["bob@remote.test", "carol@remote.test"]
        assert got.data == MESSAGE
        assert f"SIZE={len(MESSAGE)}" in got.mail_options
        assert [r for _, r in await q.retired()] == ["delivered", "delivered"]
        files = [p for p in (tmp_path / "data" / "queue" / "msg").rglob("*") if p.is_file()]
        assert files == []  # the message file is removed once all recipients are done
    finally:
        await q.stop()


async def test_temporary_failure_retried_then_delivered(tmp_path: Path, store: Store) -> None:
    remote = Remote(replies=["451 4.3.0 try again", "451 4.3.0 still busy"])
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start()
    try:
        await add_for_bob(q, MESSAGE)

        await until_attempted(q)
        (m,) = await q.messages()
        assert m.last_error == "451 4.3.0 try again"

        await until_empty(q)
        assert len(remote.handler.received) == 1
        assert inbox(store) == []  # no DSN: it was delivered
    finally:
        await q.stop()
        remote.stop()


async def test_permanent_failure_gives_dsn(tmp_path: Path, store: Store) -> None:
    remote = Remote(rcpt_replies={"nobody@remote.test": "550 5.1.1 no such user here"})
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start()
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("nobody@remote.test", orcpt="rfc822;nobody@remote.test")],
            data=MESSAGE,
            dsn_envid="env-1",
        )

        async def dsn() -> bool:
            return bool(inbox(store))

        await wait_until(dsn)
        (raw,) = inbox(store)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "delivery-status"  # RFC 3464 §2
        parts = list(msg.iter_parts())
        status = parts[1]
        assert status.get_content_type() == "message/delivery-status"
        text = raw.decode()
        assert "Final-Recipient: rfc822; nobody@remote.test" in text
        assert "Original-Recipient: rfc822;nobody@remote.test" in text
        assert "Original-Envelope-Id: env-1" in text
        assert "Action: failed" in text
        assert "Status: 5.1.1" in text
        assert "Diagnostic-Code: smtp; 550 5.1.1 no such user here" in text
        assert parts[2].get_content_type() == "text/rfc822-headers"  # no RET: headers only
        assert [r for _, r in await q.retired()] == ["failed"]
    finally:
        await q.stop()
        remote.stop()


async def test_delay_dsn_then_failure_and_notify_never(tmp_path: Path, store: Store) -> None:
    remote = Remote(replies=["452 4.2.2 mailbox full"] * 10)
    cfg = config(tmp_path, remote.port, max_attempts=3, delay_dsn_after=2)
    q = Queue(cfg, store, MockResolver(DNS))
    await q.start()
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("bob@remote.test")],
            data=MESSAGE,
            dsn_ret="FULL",
        )
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("carol@remote.test", notify=["NEVER"])],
            data=MESSAGE,
        )

        await until_empty(q)
        dsns = [m.decode() for m in inbox(store)]
        assert len(dsns) == 2  # delayed, then failed, both for bob; nothing for carol
        assert "Action: delayed" in dsns[0]
        assert "Action: failed" in dsns[1]
        assert all("carol" not in d for d in dsns)
        assert "Content-Type: message/rfc822" in dsns[1]  # RET=FULL returns the message
    finally:
        await q.stop()
        remote.stop()


async def test_null_mx_fails_at_once(tmp_path: Path, remote: Remote, store: Store) -> None:
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start()
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("x@nullmx.test")],
            data=MESSAGE,
        )

        await until_empty(q)
        (dsn,) = inbox(store)
        assert b"Status: 5.1.10" in dsn  # RFC 7505 §4.3
        assert remote.handler.received == []
    finally:
        await q.stop()


async def test_hold_release_retry_drop(tmp_path: Path, remote: Remote, store: Store) -> None:
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    ids = await q.add(
        account="alice",
        mail_from="alice@example.test",
        recipients=[QueuedRecipient("bob@remote.test"), QueuedRecipient("carol@remote.test")],
        data=MESSAGE,
    )
    assert await q.hold(ids) == 2
    await q.start()
    try:
        await asyncio.sleep(0.5)
        assert remote.handler.received == []  # held
        assert await q.drop([ids[1]]) == 1
        assert await q.release([ids[0]]) == 1

        await until_empty(q)
        assert remote.handler.received[0].rcpts == ["bob@remote.test"]
        assert sorted(r for _, r in await q.retired()) == ["delivered", "dropped"]
    finally:
        await q.stop()


async def test_tls_opportunistic_and_durable_across_restart(tmp_path: Path, store: Store) -> None:
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("mx.remote.test").configure_cert(server_ctx)
    remote = Remote(tls=server_ctx)
    cfg = config(tmp_path, remote.port)
    q = Queue(cfg, store, MockResolver(DNS))
    await add_for_bob(q, MESSAGE)
    await q.stop()  # never started: a "restart" with the message still queued
    q2 = Queue(cfg, store, MockResolver(DNS))
    assert [m.rcpt for m in await q2.messages()] == ["bob@remote.test"]
    await q2.start()
    try:
        await until_empty(q2)
        assert remote.handler.received[0].tls  # STARTTLS used, unverified (opportunistic)
    finally:
        await q2.stop()
        remote.stop()
