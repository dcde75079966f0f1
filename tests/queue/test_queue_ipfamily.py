"""IPv4/IPv6 alternation in direct delivery, as mox (mox/queue/dialed.py).

A dual-stack MX in a real DNS lab (Knot signs remote.test, Unbound validates): `mx` has A
127.0.0.1 and AAAA ::1, with one aiosmtpd remote on each address, same port. The IPv4 one
refuses with 554 5.7.1 (a blocklisted IP). The first attempt dials IPv4 and its 5.7.1 is made
temporary because the host also has IPv6; the retry starts with IPv6 and is delivered there.
On a later attempt a 5.7.x stays permanent, and a host with only IPv4 gets no second chance.
Also: the ordering rule on its own, and the schema migration that adds `dialed_ips`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mox.queue.db import COLUMNS, MIGRATIONS, msg_from_row, open_db
from mox.queue.dialed import dual_stack, order_ips, policy_refusal
from mox.queue.queue import Queue
from mox.store import Store
from mox.store.db import connect, migrate
from tests.queue.helpers import add_for_bob, inbox, until_empty
from tests.queue.remote import Remote
from tests.queue.test_queue_dns import Lab, config, settle

pytestmark = pytest.mark.integration

MESSAGE = b"From: alice@example.test\r\nSubject: families\r\n\r\nvia the other family\r\n"
BLOCKED = "554 5.7.1 your IPv4 address is on our blocklist"


def dual_stack_remotes(v6_reply: str, refuse_at: str) -> tuple[Remote, Remote]:
    """A remote on 127.0.0.1 and one on ::1, on one port free on both. The IPv4 one refuses
    with BLOCKED at MAIL or at DATA, the IPv6 one answers DATA with `v6_reply`."""
    for _ in range(20):
        refusal = {"mail_reply": BLOCKED} if refuse_at == "mail" else {"replies": [BLOCKED] * 5}
        v4 = Remote(**refusal)
        try:
            v6 = Remote(host="::1", port=v4.port, replies=[v6_reply] * 5)
        except OSError:
            v4.stop()
            continue
        return v4, v6
    raise AssertionError("no port free on both 127.0.0.1 and ::1")


@pytest.mark.parametrize("refuse_at", ["data", "mail"])
@pytest.mark.parametrize("v6_reply", ["250 OK", "554 5.7.1 blocked here too"])
async def test_blocklisted_ipv4_then_ipv6(
    tmp_path: Path, store: Store, v6_reply: str, refuse_at: str
) -> None:
    v4, v6 = dual_stack_remotes(v6_reply, refuse_at)
    lab = Lab(tmp_path, "mx IN AAAA ::1")
    q = Queue(config(tmp_path, v4.port), store, lab.resolver())
    await q.start(tls_reports=False)
    try:
        (msg_id,) = await add_for_bob(q, MESSAGE)
        await settle(q)
        # First attempt: IPv4 (DNS order), 5.7.1 made temporary since the host has IPv6 too.
        (m,) = await q.messages()
        assert m.attempts == 1
        assert m.last_error.endswith("5.7.1 your IPv4 address is on our blocklist")
        assert json.loads(m.dialed_ips) == {"mx.remote.test": ["127.0.0.1"]}
        assert v6.handler.received == []
        assert inbox(store) == []  # no DSN yet

        assert await q.retry([msg_id]) == 1
        await until_empty(q)
        ((retired, result),) = await q.retired()
        assert json.loads(retired.dialed_ips) == {"mx.remote.test": ["127.0.0.1", "::1"]}
        if v6_reply.startswith("250"):
            # The retry started with IPv6, which took the message.
            assert result == "delivered"
            (got,) = v6.handler.received
            assert got.data == MESSAGE
            assert inbox(store) == []
        else:
            # Not the first attempt any more: a 5.7.x is permanent, the sender gets a DSN.
            assert result == "failed"
            assert retired.last_error == "554 5.7.1 blocked here too"
            (dsn,) = inbox(store)
            assert b"Action: failed" in dsn
            assert b"Status: 5.7.1" in dsn
        assert v4.handler.received == []
    finally:
        await q.stop()
        v4.stop()
        v6.stop()
        lab.stop()


async def test_ipv4_only_host_fails_at_once(tmp_path: Path, store: Store) -> None:
    """No other family to try: the first attempt's 5.7.1 is permanent, as before."""
    v4 = Remote(replies=[BLOCKED])
    lab = Lab(tmp_path, "")
    q = Queue(config(tmp_path, v4.port), store, lab.resolver())
    await q.start(tls_reports=False)
    try:
        await add_for_bob(q, MESSAGE)
        await until_empty(q)
        ((retired, result),) = await q.retired()
        assert result == "failed"
        assert retired.last_error == BLOCKED
        (dsn,) = inbox(store)
        assert b"Status: 5.7.1" in dsn
    finally:
        await q.stop()
        v4.stop()
        lab.stop()


def test_order_prefers_other_family() -> None:
    ips = ["127.0.0.1", "127.0.0.2", "::1"]
    assert order_ips(ips, []) == ips  # nothing dialed yet: DNS order
    assert order_ips(ips, ["127.0.0.1"]) == ["::1", "127.0.0.2", "127.0.0.1"]
    assert order_ips(ips, ["127.0.0.1", "::1"]) == ["127.0.0.2", "127.0.0.1", "::1"]
    assert dual_stack(ips)
    assert not dual_stack(ips[:2])
    assert policy_refusal(554, "5.7.1 blocked")
    assert not policy_refusal(550, "5.1.1 no such user")
    assert not policy_refusal(451, "4.7.1 try later")


def test_migration_keeps_old_rows(tmp_path: Path) -> None:
    """A queue database of the previous schema gets `dialed_ips` (empty) on both tables."""
    path = tmp_path / "index.db"
    conn = connect(path)
    migrate(conn, MIGRATIONS[:2])
    conn.execute("INSERT INTO msgs(id, rcpt, attempts) VALUES (7, 'bob@remote.test', 2)")
    conn.close()
    conn = open_db(path)
    try:
        (row,) = conn.execute(f"SELECT {COLUMNS} FROM msgs").fetchall()  # noqa: S608
        m = msg_from_row(row)
        assert (m.id, m.rcpt, m.attempts, m.dialed_ips) == (7, "bob@remote.test", 2, "")
        retired = {r[1] for r in conn.execute("PRAGMA table_info(retired)")}
        assert "dialed_ips" in retired
    finally:
        conn.close()
