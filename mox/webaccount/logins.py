"""Login history of the web pages: who logged in (or failed to) when, from where, over what.

One small SQLite database, `weblogins.db` in the data directory, apart from the account stores
(the store's schema is not ours to change). Rows are few and short; each account keeps its last
`KEEP` entries, the admin (account "") too, so the table stays bounded. Failed logins for names
that are no account are not recorded: the table must not become a list of guessed usernames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mox.sqlitefile import SqliteFile

__all__ = ["ADMIN", "LoginLog", "LoginRecord"]

KEEP = 200
ADMIN = ""  # the account name under which admin logins are kept (no account can have it)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logins (
  id INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  account TEXT NOT NULL,
  login TEXT NOT NULL,
  ip TEXT NOT NULL,
  protocol TEXT NOT NULL,
  success INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logins_account ON logins (account, id);
"""


@dataclass(frozen=True, slots=True)
class LoginRecord:
    time: str
    login: str
    ip: str
    protocol: str
    success: bool


class LoginLog(SqliteFile):
    SCHEMA = _SCHEMA

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> LoginLog:
        return cls(data_dir / "weblogins.db")

    def record(self, account: str, login: str, ip: str, protocol: str, success: bool) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO logins (time, account, login, ip, protocol, success)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (now, account, login[:200], ip, protocol, int(success)),
            )
            conn.execute(
                "DELETE FROM logins WHERE account = ? AND id NOT IN"
                " (SELECT id FROM logins WHERE account = ? ORDER BY id DESC LIMIT ?)",
                (account, account, KEEP),
            )

    def recent(self, account: str, limit: int = 50) -> list[LoginRecord]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT time, login, ip, protocol, success FROM logins WHERE account = ?"
                " ORDER BY id DESC LIMIT ?",
                (account, limit),
            ).fetchall()
        return [LoginRecord(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]
