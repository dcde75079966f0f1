"""`mox backup` while deliveries and expunges run, and the restored copy served by a new server.

The live server runs in a thread; `mox backup` runs as a subprocess in the middle of the traffic.
The backup must verify clean, hold every message acknowledged before the backup started, hold
only messages the live store has (byte for byte), and a server started from the backup's config
must serve exactly the backup's messages over IMAP.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import smtplib
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import cast

import pytest
import trustme

from mox.config.load import load_config
from mox.store import Store
from mox.store.backup import backup
from mox.store.verify import verify_data
from tests.conftest import MOX
from tests.serverthread import PASSWORD, ServerThread, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 6


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def deliverer(port: int, name: str, acked: list[bytes], stop: threading.Event) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        for n in range(500):
            if stop.is_set():
                return
            body = f"Message-Id: <{name}-{n}@example.org>\r\nSubject: b\r\n\r\n".encode() + (
                os.urandom(64).hex().encode() * (1 + n % 40) + b"\r\n"
            )
            c.sendmail("sender@example.org", ["alice@example.test"], body)
            acked.append(body)


def imap_login(port: int, ca: trustme.CA) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    c.starttls(ctx)
    c.login("alice@example.test", PASSWORD)
    return c


def churner(port: int, ca: trustme.CA, stop: threading.Event, expunged: list[int]) -> None:
    """Appends to and expunges from Archive, so files vanish while the backup links."""
    c = imap_login(port, ca)
    try:
        for n in range(500):
            if stop.is_set():
                break
            c.append("Archive", "(\\Deleted)", None, b"Subject: churn %d\r\n\r\nx\r\n" % n)
            c.select("Archive")
            typ, _ = c.expunge()
            assert typ == "OK"
            expunged.append(n)
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass


def imap_messages(port: int, ca: trustme.CA, mailbox: str) -> list[bytes]:
    c = imap_login(port, ca)
    try:
        typ, data = c.select(mailbox, readonly=True)
        assert typ == "OK", data
        if data[0] == b"0":
            return []
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        out: list[bytes] = []
        for part in cast(list[object], data):  # typeshed omits the (header, literal) tuples
            if isinstance(part, tuple) and isinstance(part[1], bytes):
                out.append(part[1])
        return out
    finally:
        c.logout()


def test_backup_during_deliveries_restores_same_mail(tmp_path: Path, ca: trustme.CA) -> None:
    live = tmp_path / "live"
    live.mkdir()
    server, ports = start_server(live, ca)
    acked: list[bytes] = []
    expunged: list[int] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=deliverer, args=(ports["smtp"], f"c{i}", acked, stop))
        for i in range(CLIENTS)
    ] + [threading.Thread(target=churner, args=(ports["imap"], ca, stop, expunged))]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = list(acked)
        dest = tmp_path / "backup"
        out = subprocess.run(
            [*MOX, "backup", str(dest), "--config", str(live / "mox.toml")],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "backup written to" in out.stdout
        during = len(acked)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        server.stop()
    assert len(acked) > during or len(acked) > len(before), "deliveries did not go on"
    assert expunged, "the churner did nothing"

    report = verify_data(dest / "data")
    assert report.ok, [str(p) for p in report.problems]
    assert report.accounts == 2  # alice and bob
    links = [p for p in (dest / "data" / "accounts" / "alice" / "msg").rglob("*") if p.is_file()]
    assert links
    assert all(p.stat().st_nlink >= 2 for p in links[:20]), "not hard links"

    async def live_bodies() -> set[bytes]:
        async with Store(live / "data") as store:
            acc = store.account("alice")
            inbox = acc.get_mailbox("Inbox")
            assert inbox is not None
            return {acc.read_message(m) for m in acc.list_messages(inbox.id)}

    original = asyncio.run(live_bodies())
    restored = ServerThread(load_config(dest / "mox.toml")).start()
    try:
        served = imap_messages(ports["imap"], ca, "INBOX")
        archive = imap_messages(ports["imap"], ca, "Archive")
    finally:
        restored.stop()
    assert len(served) == len(set(served))
    assert set(served) <= original, "the backup has a message the live store never had"
    missing = [b for b in before if not any(s.endswith(b) for s in served)]
    assert not missing, f"{len(missing)} messages acknowledged before the backup are missing"
    assert all(b"\\Deleted" not in m for m in archive)  # churn leftovers are whole messages
    assert len(served) == report.messages - len(archive)


def test_backup_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    config = tmp_path / "mox.toml"
    config.write_text("hostname = 'x'\n")
    (tmp_path / "data").mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "something").write_text("keep me")
    with pytest.raises(FileExistsError):
        backup(config, tmp_path / "data", dest)
    assert (dest / "something").read_text() == "keep me"


async def test_backup_copies_queue_and_other_databases(tmp_path: Path) -> None:
    config = tmp_path / "mox.toml"
    config.write_text("hostname = 'x'\n")
    data = tmp_path / "data"
    async with Store(data) as store:
        acc = store.account("carol")
        await acc.deliver("Inbox", b"Subject: one\r\n\r\nbody\r\n", flags=["\\Seen"])
    queue = data / "queue"
    (queue / "msg" / "ab").mkdir(parents=True)
    (queue / "msg" / "ab" / "abcd").write_bytes(b"queued message\r\n")
    (queue / "msg" / "ab" / "gone").write_bytes(b"x")
    conn = sqlite3.connect(queue / "index.db")
    conn.execute("CREATE TABLE msgs (id INTEGER PRIMARY KEY, path TEXT, size INTEGER)")
    conn.execute("INSERT INTO msgs VALUES (1, 'msg/ab/abcd', 16), (2, 'msg/ab/missing', 1)")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(data / "reports.db")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (42)")
    conn.commit()
    conn.close()
    (data / "acme").mkdir()
    (data / "acme" / "key.pem").write_text("secret")

    result = backup(config, data, tmp_path / "dest")
    out = tmp_path / "dest" / "data"
    assert result.databases == 3
    assert result.vanished == 1  # the queued row whose file was gone
    assert (tmp_path / "dest" / "mox.toml").read_text() == "hostname = 'x'\n"
    assert (out / "queue" / "msg" / "ab" / "abcd").read_bytes() == b"queued message\r\n"
    assert not (out / "queue" / "msg" / "ab" / "gone").exists()  # unreferenced: not copied
    assert (out / "acme" / "key.pem").read_text() == "secret"
    conn = sqlite3.connect(out / "reports.db")
    assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    conn.close()
    conn = sqlite3.connect(out / "queue" / "index.db")
    assert conn.execute("SELECT id FROM msgs").fetchall() == [(1,)]
    conn.close()
    report = verify_data(out)
    assert report.ok, [str(p) for p in report.problems]
    assert (report.accounts, report.messages) == (1, 1)
    async with Store(out) as store:
        acc = store.account("carol")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        (msg,) = acc.list_messages(inbox.id)
        assert msg.flags == frozenset({"\\Seen"})
        assert acc.read_message(msg) == b"Subject: one\r\n\r\nbody\r\n"
    assert result.linked == 2  # the account's message and the queued one
