"""Built DMARC aggregate reports leave through the outgoing queue (RFC 7489 §7.2)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mox.config.load import parse_config
from mox.dns.resolver import MockResolver
from mox.queue.queue import Queue
from mox.reportdb import ReportDB
from mox.server.mailauth import send_pending_reports
from mox.store import Store
from tests.conftest import minimal_config
from tests.queue.remote import Remote

REPORT = b"From: postmaster@mail.example.test\r\nSubject: Report Domain: remote.test\r\n\r\nxml\r\n"


async def test_pending_reports_are_queued_and_delivered(tmp_path: Path) -> None:
    remote = Remote()
    data = minimal_config()
    data["queue"] = {"direct_port": remote.port}
    loaded = parse_config(data, tmp_path / "mox.toml")
    db = ReportDB(tmp_path / "reports.db")
    db.add_outgoing(
        "2026-11-25T00:00:00+00:00",
        "remote.test",
        "r1",
        0,
        86400,
        ["dmarc@remote.test"],
        REPORT,
        "pending",
        [],
    )
    db.add_outgoing(
        "2026-11-25T00:00:00+00:00", "nowhere.test", "r2", 0, 86400, [], b"", "no destination", []
    )
    store = Store(tmp_path / "data")
    resolver = MockResolver(
        {("remote.test", "MX"): ["10 mx.remote.test."], ("mx.remote.test", "A"): ["127.0.0.1"]}
    )
    queue = Queue(loaded, store, resolver)
    await queue.start()
    try:
        assert await send_pending_reports(db, queue, "mail.example.test") == 1
        assert await send_pending_reports(db, queue, "mail.example.test") == 0  # only once
        assert [r["status"] for r in db.outgoing()] == ["queued", "no destination"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not remote.handler.received:
            await asyncio.sleep(0.05)
        (got,) = remote.handler.received
        assert got.mail_from == "postmaster@mail.example.test"
        assert got.rcpts == ["dmarc@remote.test"]
        assert got.data == REPORT
    finally:
        await queue.stop()
        await store.aclose()
        remote.stop()
