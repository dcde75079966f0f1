"""`mox verifydata`: check a data directory (a live store or a backup) for consistency.

What is checked, per account database (data/accounts/<name>/index.db), as mox's verifydata
(reference §1.8):
- SQLite's own `PRAGMA integrity_check` and `PRAGMA foreign_key_check`;
- the schema version is one this mox knows;
- every mailbox has UIDVALIDITY > 0, below the account's next_uidvalidity counter and unique, and
  UIDNEXT > 0 (RFC 9051 §2.3.1.1);
- every message row has a UID in [1, UIDNEXT) of its mailbox (RFC 9051 §2.3.1.1: UIDs are
  assigned ascending, UIDNEXT is above all of them), a unique file path inside msg/, and a file
  of exactly the stored size;
- no orphan files: files under msg/ that no row references. A crash between writing a file and
  committing its row leaves one (the store's design allows that, never the reverse); with
  `fix=True` they are moved aside to <account>/orphaned/, not deleted.

The queue database (data/queue/index.db), when present, gets the integrity check and a check
that every queued row's file exists with its size. Other databases (*.db directly in data/) get
the integrity check.

Run `--fix` only on a stopped server or on a backup: on a live store a file being delivered
exists for a moment before its row.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from mox.store.db import MIGRATIONS

__all__ = ["Problem", "Report", "verify_data"]


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "account alice", "queue", "reports.db"
    kind: str  # integrity, schema, mailbox, uid, missing-file, size, path, orphan, queue
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class Report:
    problems: list[Problem] = field(default_factory=list)
    accounts: int = 0
    messages: int = 0
    databases: int = 0
    moved: list[Path] = field(default_factory=list)  # orphans moved aside by fix

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, where: str, kind: str, detail: str) -> None:
        self.problems.append(Problem(where, kind, detail))


def _open(path: Path) -> sqlite3.Connection:
    # mode=rw: never create a database that is not there. Readers of a WAL database need to be
    # able to write its -shm file, so read-only mode would fail on a live store.
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _integrity(conn: sqlite3.Connection, where: str, report: Report) -> bool:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        report.add(where, "integrity", str(exc))
        return False
    if rows != [("ok",)]:
        for (row,) in rows[:20]:
            report.add(where, "integrity", str(row))
        return False
    fk = conn.execute("PRAGMA foreign_key_check").fetchall()
    for row in fk[:20]:
        report.add(where, "integrity", f"foreign key violation {row!r}")
    return not fk


def _meta(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def _message_files(msgdir: Path) -> list[str]:
    """Relative paths (msg/<dir>/<name>) of all files under msgdir."""
    found: list[str] = []
    if not msgdir.is_dir():
        return found
    for root, _dirs, names in os.walk(msgdir):
        for name in names:
            rel = Path(root, name).relative_to(msgdir.parent)
            found.append(rel.as_posix())
    return found


def _verify_account(accdir: Path, report: Report, fix: bool) -> None:
    where = f"account {accdir.name}"
    conn = _open(accdir / "index.db")
    try:
        if not _integrity(conn, where, report):
            return  # the rows cannot be trusted; the rest would only add noise
        version = _meta(conn, "schema_version")
        if version is None or version > len(MIGRATIONS):
            report.add(where, "schema", f"unknown schema version {version}")
            return
        next_uidvalidity = _meta(conn, "next_uidvalidity") or 0
        mailboxes: dict[int, tuple[str, int]] = {}
        seen_validity: dict[int, str] = {}
        for mid, name, uidvalidity, uidnext in conn.execute(
            "SELECT id, name, uidvalidity, uidnext FROM mailboxes ORDER BY id"
        ):
            mailboxes[mid] = (name, uidnext)
            if uidvalidity < 1 or uidvalidity >= next_uidvalidity:
                report.add(
                    where,
                    "mailbox",
                    f"{name}: uidvalidity {uidvalidity} outside [1, {next_uidvalidity})",
                )
            if uidvalidity in seen_validity:
                report.add(
                    where,
                    "mailbox",
                    f"{name}: uidvalidity {uidvalidity} also used by {seen_validity[uidvalidity]}",
                )
            seen_validity[uidvalidity] = name
            if uidnext < 1:
                report.add(where, "mailbox", f"{name}: uidnext {uidnext} < 1")
        referenced: set[str] = set()
        for mid, uid, path, size, expunged in conn.execute(
            "SELECT mailbox_id, uid, path, size, expunged FROM messages ORDER BY id"
        ):
            mailbox = mailboxes.get(mid)
            if mailbox is None:
                report.add(where, "uid", f"message uid {uid} in unknown mailbox #{mid}")
                continue
            name, uidnext = mailbox
            if not 1 <= uid < uidnext:
                report.add(where, "uid", f"{name}: uid {uid} not in [1, uidnext {uidnext})")
            if expunged:
                continue  # a tombstone: its file is gone by design
            report.messages += 1
            label = f"{name} uid {uid}"
            rel = Path(path)
            if not path or rel.is_absolute() or ".." in rel.parts or rel.parts[0] != "msg":
                report.add(where, "path", f"{label}: bad file path {path!r}")
                continue
            if path in referenced:
                report.add(where, "path", f"{label}: file {path} shared with another message")
            referenced.add(path)
            try:
                actual = (accdir / rel).stat().st_size
            except FileNotFoundError:
                report.add(where, "missing-file", f"{label}: {path} is missing")
                continue
            if actual != size:
                report.add(where, "size", f"{label}: {path} has {actual} bytes, row says {size}")
    finally:
        conn.close()
    for rel_text in _message_files(accdir / "msg"):
        if rel_text in referenced:
            continue
        report.add(where, "orphan", f"{rel_text} has no message row")
        if fix:
            src = accdir / rel_text
            dst = accdir / "orphaned" / Path(rel_text).relative_to("msg")
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(src, dst)
            report.moved.append(dst)


def _verify_queue(qdir: Path, report: Report) -> None:
    conn = _open(qdir / "index.db")
    try:
        if not _integrity(conn, "queue", report):
            return
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "msgs" not in tables:
            return
        for qid, path, size in conn.execute("SELECT id, path, size FROM msgs ORDER BY id"):
            try:
                actual = (qdir / path).stat().st_size
            except FileNotFoundError:
                report.add("queue", "missing-file", f"message #{qid}: {path} is missing")
                continue
            if actual != size:
                report.add(
                    "queue", "size", f"message #{qid}: {path} has {actual} bytes, row says {size}"
                )
    finally:
        conn.close()


def verify_data(data_dir: Path, *, fix: bool = False) -> Report:
    """Check every database and message file under data_dir; see the module docstring."""
    report = Report()
    if not data_dir.is_dir():
        report.add(str(data_dir), "missing", "not a directory")
        return report
    accounts = data_dir / "accounts"
    if accounts.is_dir():
        for accdir in sorted(p for p in accounts.iterdir() if p.is_dir()):
            if not (accdir / "index.db").is_file():
                report.add(f"account {accdir.name}", "missing-file", "index.db is missing")
                continue
            report.accounts += 1
            report.databases += 1
            _verify_account(accdir, report, fix)
    qdir = data_dir / "queue"
    if (qdir / "index.db").is_file():
        report.databases += 1
        _verify_queue(qdir, report)
    for db in sorted(data_dir.glob("*.db")):
        report.databases += 1
        conn = _open(db)
        try:
            _integrity(conn, db.name, report)
        finally:
            conn.close()
    return report
