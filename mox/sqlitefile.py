"""Small SQLite databases of the server's own beside the account stores (reports, web logins):
WAL mode, a connection per use (they are written rarely), the schema created at open."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

__all__ = ["SqliteFile"]


class SqliteFile:
    SCHEMA: ClassVar[str] = ""  # CREATE ... IF NOT EXISTS statements

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as conn:
            conn.executescript(self.SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: committed when the block ends, rolled back on error."""
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                yield conn
        finally:
            conn.close()
