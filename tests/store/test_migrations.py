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
