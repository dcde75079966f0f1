"""kill -9 of `mox serve` during SMTP deliveries never loses an acknowledged message.

Several clients deliver over real SMTP connections while the server process is SIGKILLed at a
random moment; after each kill the store is reopened and every message that got its 250 reply must
be there exactly once, byte for byte, and SQLite's integrity check must pass. Bounded: 3 rounds.
"""

from __future__ import annotations

import asyncio
import random
import signal
import smtplib
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from mox.store import Store
from tests.conftest import MOX, free_port, minimal_config
from tests.dnsstub import DnsStub

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 3
CLIENTS = 6


def start(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*MOX, "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("mox serve did not start listening")


def client(port: int, name: str, acked: list[bytes], stop: threading.Event) -> None:
    n = 0
    while not stop.is_set() and n < 10_000:
        n += 1
        msg_id = f"<{name}-{n}@example.org>".encode()
        body = (
            b"Message-Id: "
            + msg_id
            + b"\r\nSubject: x\r\n\r\n"
            + (b"x" * random.randrange(10, 20000))
            + b"\r\n"
        )
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                c.sendmail("sender@example.org", ["alice@example.test"], body)
        except (OSError, smtplib.SMTPException):
            return  # server gone: this message was not acknowledged
        acked.append(body)


@pytest.fixture
def dns_stub() -> Iterator[DnsStub]:
    stub = DnsStub({("example.org", "A"): ["192.0.2.10"]})  # the MAIL FROM domain exists
    yield stub
    stub.close()


def test_sigkill_during_delivery_loses_nothing(
    tmp_path: Path, mox_env: dict[str, str], dns_stub: DnsStub
) -> None:
    port = free_port()
    data = minimal_config()
    data["listeners"]["internal"]["smtp"] = {"enabled": True, "port": port}
    data["dns"] = {"nameservers": [dns_stub.address]}  # never the machine's resolver
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    all_acked: list[bytes] = []
    for _ in range(ROUNDS):
        proc = start(config, port, mox_env)
        acked: list[bytes] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=client, args=(port, f"c{i}-{random.random()}", acked, stop))
            for i in range(CLIENTS)
        ]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.5, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
        assert acked, "no delivery was acknowledged before the kill"
        all_acked += acked

    async def stored() -> list[bytes]:
        async with Store(tmp_path / "data") as store:
            acc = store.account("alice")
            inbox = acc.get_mailbox("Inbox")
            assert inbox is not None
            msgs = acc.list_messages(inbox.id)
            uids = [m.uid for m in msgs]
            assert uids == sorted(set(uids))
            return [acc.read_message(m) for m in msgs]

    got = asyncio.run(stored())
    bodies = [m[m.index(b"Message-Id: ") :] for m in got]  # without our trace headers
    for body in all_acked:
        assert bodies.count(body) == 1
    db = sqlite3.connect(tmp_path / "data" / "accounts" / "alice" / "index.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
