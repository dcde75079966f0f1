"""`mox backup`: a consistent copy of a running installation, as mox's backup (reference §1.8).

- Every SQLite database (each account's index.db, the queue's index.db, *.db in the data
  directory) is copied with SQLite's online backup API in one step, which reads one consistent
  snapshot while writers go on (https://www.sqlite.org/backup.html).
- Message files are immutable, so they are hard-linked into the backup (copied where the backup
  is on another file system). Only the files the database snapshot references are taken: a file
  whose row commits after the snapshot is not part of it. A message expunged between the
  snapshot and the linking has lost its file; its row becomes a tombstone in the copy (as if the
  expunge had been in the snapshot), so the backup verifies clean.
- The config directory is copied (minus the data directory), so the backup mirrors the
  installation: `mox serve --config DEST/<config file>` serves it when data_dir is relative.

Check a backup with `mox verifydata DEST/<data dir>`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from mox.store import files

__all__ = ["BackupResult", "backup"]

SKIP_SUFFIXES = ("-wal", "-shm", "-journal")


@dataclass(slots=True)
class BackupResult:
    dest: Path
    data_dest: Path
    databases: int = 0
    linked: int = 0  # message files hard-linked
    copied: int = 0  # message files copied (other file system) and other files
    vanished: int = 0  # messages expunged (or queue messages delivered) during the backup


def _snapshot(src: Path, dst: Path) -> None:
    """Copy one database with the online backup API, in a single step (one read snapshot)."""
    dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=rw", uri=True, isolation_level=None)
    try:
        source.execute("PRAGMA busy_timeout = 10000")
        target = sqlite3.connect(dst, isolation_level=None)
        try:
            source.backup(target)  # pages=-1: all pages in one step, one consistent snapshot
        finally:
            target.close()
    finally:
        source.close()


def _link(src: Path, dst: Path, result: BackupResult) -> bool:
    """Hard link (or copy) one immutable file; False when the source is gone."""
    dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileNotFoundError:
        return False
    except OSError:
        try:
            files.link_or_copy(src, dst)  # copies and fsyncs where links are not possible
        except FileNotFoundError:
            return False
        result.copied += 1
        return True
    result.linked += 1
    return True


def _copy_tree(src: Path, dst: Path, skip: set[Path], result: BackupResult) -> None:
    """Copy regular files (not SQLite side files), leaving out the paths in skip."""
    for root, dirs, names in os.walk(src):
        rootp = Path(root)
        dirs[:] = [d for d in dirs if (rootp / d).resolve() not in skip]
        for name in names:
            path = rootp / name
            if path.resolve() in skip or name.endswith(SKIP_SUFFIXES) or not path.is_file():
                continue
            target = dst / path.relative_to(src)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copy2(path, target)
            result.copied += 1


def _backup_account(src: Path, dst: Path, result: BackupResult) -> None:
    _snapshot(src / "index.db", dst / "index.db")
    result.databases += 1
    conn = sqlite3.connect(dst / "index.db", isolation_level=None)
    try:
        rows = conn.execute("SELECT id, path FROM messages WHERE expunged = 0").fetchall()
        gone = [mid for mid, path in rows if not _link(src / path, dst / path, result)]
        if gone:
            result.vanished += len(gone)
            conn.execute("BEGIN")
            conn.executemany(
                "UPDATE messages SET expunged = 1, path = '' WHERE id = ?", [(i,) for i in gone]
            )
            conn.execute("COMMIT")
    finally:
        conn.close()
    skip = {(src / n).resolve() for n in ("msg", "orphaned", "index.db")}
    _copy_tree(src, dst, skip, result)


def _backup_queue(src: Path, dst: Path, result: BackupResult) -> None:
    _snapshot(src / "index.db", dst / "index.db")
    result.databases += 1
    conn = sqlite3.connect(dst / "index.db", isolation_level=None)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "msgs" not in tables:
            return
        rows = conn.execute("SELECT id, path FROM msgs").fetchall()
        done: dict[str, bool] = {}
        gone = []
        for qid, path in rows:
            if path not in done:
                done[path] = _link(src / path, dst / path, result)
            if not done[path]:
                gone.append(qid)
        if gone:
            # Delivered (and its file removed) after the snapshot: not queued any more.
            result.vanished += len(gone)
            conn.execute("BEGIN")
            conn.executemany("DELETE FROM msgs WHERE id = ?", [(i,) for i in gone])
            conn.execute("COMMIT")
    finally:
        conn.close()


def backup(config_file: Path, data_dir: Path, dest: Path) -> BackupResult:
    """Back up the installation of config_file (its directory) and data_dir into dest, which
    must not exist or be empty. Safe while the server runs."""
    config_file = config_file.resolve()
    data_dir = data_dir.resolve()
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"backup destination {dest} is not empty")
    config_dir = config_file.parent
    try:
        data_dest = dest / data_dir.relative_to(config_dir)
    except ValueError:
        data_dest = dest / "data"  # data_dir outside the config directory
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    result = BackupResult(dest=dest, data_dest=data_dest)
    data_dest.mkdir(mode=0o700, parents=True, exist_ok=True)

    accounts = data_dir / "accounts"
    if accounts.is_dir():
        for accdir in sorted(p for p in accounts.iterdir() if p.is_dir()):
            if (accdir / "index.db").is_file():
                _backup_account(accdir, data_dest / "accounts" / accdir.name, result)
    queue = data_dir / "queue"
    if (queue / "index.db").is_file():
        _backup_queue(queue, data_dest / "queue", result)
        _copy_tree(
            queue, data_dest / "queue", {(queue / n).resolve() for n in ("msg", "index.db")}, result
        )
    skip = {accounts.resolve(), queue.resolve()}
    for db in sorted(data_dir.glob("*.db")):
        _snapshot(db, data_dest / db.name)
        result.databases += 1
        skip.add(db.resolve())
    _copy_tree(data_dir, data_dest, skip, result)
    # The config directory, without the data directory and without the backup itself.
    _copy_tree(config_dir, dest, {data_dir, dest}, result)
    return result
