"""`mox verifydata`: a clean store passes; each kind of damage is found; --fix moves orphans."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from mox.store import Store
from mox.store.verify import verify_data
from tests.conftest import MOX


async def make_store(data: Path) -> None:
    async with Store(data) as store:
        acc = store.account("alice")
        for i in range(3):
            await acc.deliver("Inbox", b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        await acc.create_mailbox("Lists/x")
        await acc.deliver("Lists/x", b"Subject: list\r\n\r\nhi\r\n")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        await acc.store_flags(inbox.id, [1], "add", ["\\Deleted"])
        await acc.expunge(inbox.id)  # a tombstone without a file: fine
        store.account("bob")


def kinds(data: Path, fix: bool = False) -> list[str]:
    return sorted(p.kind for p in verify_data(data, fix=fix).problems)


async def test_clean_store_passes(tmp_path: Path) -> None:
    await make_store(tmp_path)
    report = verify_data(tmp_path)
    assert report.ok, report.problems
    assert (report.accounts, report.messages, report.databases) == (2, 3, 2)


async def test_missing_and_wrong_size_files(tmp_path: Path) -> None:
    await make_store(tmp_path)
    acc = tmp_path / "accounts" / "alice"
    conn = sqlite3.connect(acc / "index.db")
    paths = [r[0] for r in conn.execute("SELECT path FROM messages WHERE expunged = 0")]
    conn.close()
    (acc / paths[0]).unlink()
    (acc / paths[1]).write_bytes(b"short")
    assert kinds(tmp_path) == ["missing-file", "size"]


async def test_uid_and_uidvalidity_problems(tmp_path: Path) -> None:
    await make_store(tmp_path)
    conn = sqlite3.connect(tmp_path / "accounts" / "alice" / "index.db")
    conn.execute("UPDATE messages SET uid = 99 WHERE uid = 3")  # at or above UIDNEXT
    conn.execute("UPDATE mailboxes SET uidvalidity = 0 WHERE name = 'Sent'")
    conn.execute("UPDATE mailboxes SET uidvalidity = 1 WHERE name = 'Trash'")  # Inbox has 1
    conn.commit()
    conn.close()
    problems = verify_data(tmp_path).problems
    assert sorted(p.kind for p in problems) == ["mailbox", "mailbox", "uid"]
    assert any("uid 99 not in [1, uidnext 4)" in p.detail for p in problems)
    assert any("also used by Inbox" in p.detail for p in problems)


async def test_bad_path_and_shared_file(tmp_path: Path) -> None:
    await make_store(tmp_path)
    conn = sqlite3.connect(tmp_path / "accounts" / "alice" / "index.db")
    rows = conn.execute("SELECT id, path FROM messages WHERE expunged = 0 ORDER BY id").fetchall()
    conn.execute("UPDATE messages SET path = ? WHERE id = ?", (rows[0][1], rows[1][0]))
    conn.execute("UPDATE messages SET path = '../../etc/passwd' WHERE id = ?", (rows[2][0],))
    conn.commit()
    conn.close()
    # the file of rows[1] and rows[2] are now unreferenced too
    assert kinds(tmp_path) == ["orphan", "orphan", "path", "path"]


async def test_corrupt_database_is_reported(tmp_path: Path) -> None:
    await make_store(tmp_path)
    db = tmp_path / "accounts" / "bob" / "index.db"
    raw = bytearray(db.read_bytes())
    raw[100:4096] = b"\xff" * (4096 - 100)  # clobber the schema page
    db.write_bytes(bytes(raw))
    problems = verify_data(tmp_path).problems
    assert problems
    assert all(p.where == "account bob" for p in problems)
    assert problems[0].kind == "integrity"


async def test_cli_orphans_and_fix(tmp_path: Path, mox_env: dict[str, str]) -> None:
    await make_store(tmp_path)
    acc = tmp_path / "accounts" / "alice"
    orphan = acc / "msg" / "zz" / "orphanfile"
    orphan.parent.mkdir()
    orphan.write_bytes(b"left by a crash")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MOX, "verifydata", *args, str(tmp_path)],
            env=mox_env,
            capture_output=True,
            text=True,
            check=False,
        )

    first = run()
    assert first.returncode == 1
    assert "account alice: orphan: msg/zz/orphanfile has no message row" in first.stdout
    assert "1 problems" in first.stderr
    fixed = run("--fix")
    assert fixed.returncode == 1  # it reports what it found, and what it moved
    assert f"moved aside: {acc / 'orphaned' / 'zz' / 'orphanfile'}" in fixed.stdout
    assert not orphan.exists()
    assert (acc / "orphaned" / "zz" / "orphanfile").read_bytes() == b"left by a crash"
    again = run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "checked 2 databases, 2 accounts, 3 messages: 0 problems" in again.stdout


def test_missing_data_dir(tmp_path: Path) -> None:
    report = verify_data(tmp_path / "nope")
    assert not report.ok
    assert report.problems[0].kind == "missing"


@pytest.mark.parametrize("version", [99])
async def test_schema_from_the_future(tmp_path: Path, version: int) -> None:
    await make_store(tmp_path)
    conn = sqlite3.connect(tmp_path / "accounts" / "bob" / "index.db")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.commit()
    conn.close()
    assert kinds(tmp_path) == ["schema"]
