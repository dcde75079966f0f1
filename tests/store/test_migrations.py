"""Schema creation and migrations: each applied exactly once, in order, atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from mox.store import Store, db


def test_schema_version_and_pragmas(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    try:
        assert db.migrate(conn) == len(db.MIGRATIONS)
        assert db.get_meta(conn, "schema_version") == len(db.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "mailboxes", "messages", "subscriptions", "credentials"} <= tables
        # Migrating again is a no-op.
        assert db.migrate(conn) == len(db.MIGRATIONS)
        assert conn.execute("SELECT count(*) FROM mailboxes").fetchone()[0] == 6
    finally:
        conn.close()


def test_migration_applied_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def m2(d: sqlite_utils.Database) -> None:
        calls.append(1)
        d.table("mailboxes").add_column("color", str)

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, m2])
    for _ in range(3):
        s = Store(tmp_path)
        acc = s.account("mjl")
        assert acc.schema_version == len(db.MIGRATIONS)
        s.close()
    assert calls == [1]
    conn = sqlite3.connect(tmp_path / "accounts" / "mjl" / "index.db")
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(mailboxes)")]
        assert "color" in cols
    finally:
        conn.close()


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    def bad(d: sqlite_utils.Database) -> None:
        d.table("mailboxes").add_column("half", str)
        raise RuntimeError("boom")

    conn = db.connect(tmp_path / "x.db")
    try:
        db.migrate(conn)
        with pytest.raises(RuntimeError, match="boom"):
            db.migrate(conn, [*db.MIGRATIONS, bad])
        assert db.get_meta(conn, "schema_version") == len(db.MIGRATIONS)
        cols = [r[1] for r in conn.execute("PRAGMA table_info(mailboxes)")]
        assert "half" not in cols
    finally:
        conn.close()


def test_newer_schema_refused(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    try:
        db.migrate(conn)
        db.set_meta(conn, "schema_version", 99)
        with pytest.raises(RuntimeError, match="newer"):
            db.migrate(conn)
    finally:
        conn.close()


async def test_fts_moved_to_detail_none_keeping_the_indexed_text(tmp_path: Path) -> None:
    """Migration 5 rebuilds the full-text index without positions, copying what was indexed:
    SEARCH answers the same from it, without reading the message files."""
    dbpath = tmp_path / "accounts" / "mjl" / "index.db"
    dbpath.parent.mkdir(parents=True)
    conn = db.connect(dbpath)
    try:
        assert db.migrate(conn, db.MIGRATIONS[:4]) == 4
        assert (
            "detail=none"
            not in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'fts'").fetchone()[0]
        )
    finally:
        conn.close()
    async with Store(tmp_path) as store:
        acc = store.account("mjl")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        msg = await acc.deliver("Inbox", b"Subject: old\r\n\r\nprice [USD] 5*3? fine\r\n")
        await acc.index_backlog()
    # Back to version 4 with the text in an index with positions, as an older mox left it.
    conn = db.connect(dbpath)
    try:
        conn.execute("DROP TABLE fts")
        conn.execute(
            "CREATE VIRTUAL TABLE fts USING fts5(headers, body, "
            "tokenize='trigram case_sensitive 1')"
        )
        conn.execute(
            "INSERT INTO fts(rowid, headers, body) VALUES (?, 'subject: old', "
            "'price [usd] 5*3? fine')",
            (msg.id,),
        )
        db.set_meta(conn, "schema_version", 4)
    finally:
        conn.close()
    async with Store(tmp_path) as store:
        acc = store.account("mjl")
        assert acc.schema_version == len(db.MIGRATIONS)
        sql = acc._rconn.execute("SELECT sql FROM sqlite_master WHERE name = 'fts'").fetchone()[0]
        assert "detail=none" in sql
        acc.message_path(msg).unlink()  # answers come from the index, not the file
        assert acc.unindexed_uids(inbox.id) == set()
        # GLOB's wildcards in a needle are plain characters (fulltext.glob_literal).
        for needle in ("[USD]", "5*3?", "D] 5", "PRICE", "e [u"):
            assert acc.fts_search(inbox.id, needle, text=False) == {msg.uid}, needle
        for needle in ("5x3", "[usd ", "5*3?!", "usd]]"):
            assert acc.fts_search(inbox.id, needle, text=False) == set(), needle
        assert acc.fts_search(inbox.id, "subject: old", text=False) == set()
        assert acc.fts_search(inbox.id, "subject: old", text=True) == {msg.uid}
        assert acc.fts_search(inbox.id, "5*", text=False) == {msg.uid}  # short: instr
