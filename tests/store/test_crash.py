"""Crash safety: SIGKILL a delivering child process at a random moment, then check every
delivery it acknowledged is there, byte for byte, and the database passes integrity_check.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mox.store import Store

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, sys
from pathlib import Path
from mox.store import Store

def body(i: int) -> bytes:
    return (b"Subject: %d\r\n\r\n" % i) + bytes([i % 251]) * (i * 37 % 5000)

async def one(acc, i: int) -> None:
    m = await acc.deliver("Inbox", body(i))
    print(f"{i} {m.uid}", flush=True)

async def main() -> None:
    store = Store(Path(sys.argv[1]))
    acc = store.account("crash")
    start = int(sys.argv[2])
    print("ready", flush=True)
    i = start
    while True:
        # Several concurrent deliveries, so kills also land inside group commits.
        await asyncio.gather(*(one(acc, i + k) for k in range(8)))
        i += 8

asyncio.run(main())
"""


def body(i: int) -> bytes:
    return (b"Subject: %d\r\n\r\n" % i) + bytes([i % 251]) * (i * 37 % 5000)


def run_and_kill(data_dir: Path, start: int, rng: random.Random) -> dict[int, int]:
    """Run the child until a random moment, SIGKILL it; return acknowledged {i: uid}."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), str(start)],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    acked: dict[int, int] = {}
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = os.read(fd, 65536)
            assert chunk, "child exited before it was ready"
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        assert line == b"ready"
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        while (left := deadline - time.monotonic()) > 0:
            if select.select([fd], [], [], left)[0]:
                buf += os.read(fd, 65536)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        while chunk := os.read(fd, 65536):
            buf += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    # Only complete lines were acknowledged; a torn last line was not.
    for ack in buf.decode().split("\n")[:-1]:
        i, uid = ack.split()
        acked[int(i)] = int(uid)
    return acked


@pytest.mark.slow
def test_sigkill_during_delivery(tmp_path: Path) -> None:
    rng = random.Random()
    all_acked: dict[int, int] = {}
    start = 0
    for _round in range(4):
        acked = run_and_kill(tmp_path, start, rng)
        all_acked.update(acked)
        start += 100_000

        dbpath = tmp_path / "accounts" / "crash" / "index.db"
        conn = sqlite3.connect(dbpath)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()

        store = Store(tmp_path)
        try:
            acc = store.account("crash")
            inbox = acc.get_mailbox("Inbox")
            assert inbox is not None
            by_uid = {m.uid: m for m in acc.list_messages(inbox.id)}
            for i, uid in all_acked.items():
                assert uid in by_uid, f"acknowledged delivery {i} (uid {uid}) lost"
                assert acc.read_message(by_uid[uid]) == body(i)
            # Every row's file exists and has the size recorded.
            for m in by_uid.values():
                assert acc.message_path(m).stat().st_size == m.size
            assert len(by_uid) == len(set(by_uid))
        finally:
            store.close()
    assert all_acked, "the child never acknowledged a delivery"
