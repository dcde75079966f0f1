"""Account.mailbox_view (what SELECT loads) against the messages themselves, with and without gaps
in the UIDs, and the read-ahead of the index it scans (mox.store.prefetch)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mox.store import Account, MailboxNotFound, Store
from mox.store.prefetch import prefetch_btree, sqlite_fd


def view_from_messages(acc: Account, mailbox_id: int) -> tuple[list[int], frozenset[str], int]:
    msgs = acc.list_messages(mailbox_id)
    mb = acc.get_mailbox_by_id(mailbox_id)
    assert mb is not None
    keywords = frozenset(f for m in msgs for f in m.flags if not f.startswith("\\"))
    return [m.uid for m in msgs], keywords, mb.highest_modseq


def view(acc: Account, mailbox_id: int) -> tuple[list[int], frozenset[str], int]:
    v = acc.mailbox_view(mailbox_id)
    return v.uids, v.keywords, v.highest_modseq


async def test_view_with_and_without_gaps(acc: Account) -> None:
    ib = acc.get_mailbox("Inbox")
    assert ib is not None
    assert view(acc, ib.id) == ([], frozenset(), ib.highest_modseq)
    for i in range(8):
        flags = [["\\Seen"], ["\\Seen", "$Forwarded"], [], ["Work"]][i % 4]
        await acc.deliver("Inbox", b"Subject: %d\r\n\r\nx\r\n" % i, flags=flags)
    assert view(acc, ib.id) == view_from_messages(acc, ib.id)
    assert view(acc, ib.id)[0] == list(range(1, 9))
    # Gaps in the middle, then at both ends.
    for uids in ([4, 5], [1], [8], [2, 3]):
        await acc.store_flags(ib.id, uids, "add", ["\\Deleted"])
        await acc.expunge(ib.id, uids)
        assert view(acc, ib.id) == view_from_messages(acc, ib.id)
    # Keywords only of the messages still there: 6 has $Forwarded, 7 no flags.
    assert view(acc, ib.id)[:2] == ([6, 7], frozenset({"$forwarded"}))
    assert await acc.expunge(ib.id, [6]) == []  # without \\Deleted: stays
    await acc.store_flags(ib.id, [6], "add", ["\\Deleted"])
    await acc.expunge(ib.id)
    assert view(acc, ib.id) == view_from_messages(acc, ib.id)
    assert view(acc, ib.id)[:2] == ([7], frozenset())
    await acc.store_flags(ib.id, [7], "add", ["\\Deleted"])
    await acc.expunge(ib.id)
    assert view(acc, ib.id) == view_from_messages(acc, ib.id)
    assert view(acc, ib.id)[:2] == ([], frozenset())


async def test_view_of_missing_mailbox(acc: Account) -> None:
    with pytest.raises(MailboxNotFound):
        acc.mailbox_view(9999)


def _index_pages(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT count(*) FROM dbstat WHERE name = ?", (name,)).fetchone()
        return int(row[0])
    finally:
        conn.close()


def test_prefetch_walks_the_whole_btree(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    conn.execute("CREATE INDEX t_ab ON t(a, b)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, "x" * (i % 50)) for i in range(20_000)))
    conn.commit()
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 't_ab'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        pages = _index_pages(path, "t_ab")
    except sqlite3.OperationalError:  # SQLite built without the dbstat table
        pages = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        n = prefetch_btree(fd, root, page_size, 100_000)
        assert n > 10
        if pages:
            assert n == pages
        assert prefetch_btree(fd, root, page_size, 5) == 5
    finally:
        os.close(fd)


def test_prefetch_of_garbage_stops(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    # Interior-looking page headers pointing at pages beyond the file, and at themselves.
    page = bytearray(4096)
    page[0] = 0x02
    page[3:5] = (1).to_bytes(2, "big")
    page[12:14] = (100).to_bytes(2, "big")
    page[100:104] = (2).to_bytes(4, "big")  # a cycle: page 2 -> page 2
    page[8:12] = (10**6).to_bytes(4, "big")  # beyond the file: not followed
    path.write_bytes(bytes(4096) + bytes(page) + os.urandom(4096 * 3))
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        assert prefetch_btree(fd, 2, 4096, 1000) == 1
        assert prefetch_btree(fd, 3, 4096, 1000) >= 1
    finally:
        os.close(fd)


async def test_prefetch_keeps_sqlite_locks(tmp_path: Path) -> None:
    """The read-ahead never opens and closes the database file itself (that would drop SQLite's
    POSIX locks): another process still cannot lock SQLite's SHARED byte range exclusively."""
    if not Path("/proc/self/fd").is_dir() or not hasattr(os, "posix_fadvise"):
        pytest.skip("Linux only")
    store = Store(tmp_path)
    try:
        acc = store.account("mjl")
        path = acc.dir / "index.db"
        fd = sqlite_fd(path)
        assert fd is not None
        st, fst = os.stat(path), os.fstat(fd)
        assert (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino)
        # The read-ahead queued at open is done once the writer thread ran what came after it.
        await asyncio.get_running_loop().run_in_executor(acc._executor, lambda: None)
        probe = (
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "try:\n"
            "    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, 0)\n"
            "    print('got')\n"
            "except OSError:\n"
            "    print('blocked')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "blocked"
    finally:
        await store.aclose()
