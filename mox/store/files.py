"""Message files: one immutable file per message, written and fsynced before its row exists.

Layout as the Go mox (reference §1.8), with random names: msg/<2 hex>/<32 hex>; the directory
changes every BUCKET_RUN files (see new_message_path). A file is
created with O_EXCL, written once, fsynced, and never rewritten; a crash leaves at worst an
orphan file without a database row.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

__all__ = ["fsync_dir", "link_or_copy", "new_message_path", "write_message"]


# Messages go to one of 256 directories. Consecutive new files share a directory for a while
# (BUCKET_RUN of them), so the deliveries that one group commit makes durable need one directory
# fsync instead of one per message (bench/PROFILE.md); over time the files still spread evenly.
BUCKET_RUN = 256
_bucket = [secrets.randbelow(256), 0]


def new_message_path() -> str:
    """A fresh relative path for a message file: msg/<2 hex>/<2 hex><30 random hex>."""
    bucket, used = _bucket
    if used >= BUCKET_RUN:
        bucket, used = (bucket + 1) % 256, 0
    _bucket[0], _bucket[1] = bucket, used + 1
    name = f"{bucket:02x}{secrets.token_hex(15)}"  # as before: the directory is the prefix
    return f"msg/{name[:2]}/{name}"


def fsync_dir(path: Path) -> None:
    """Make the directory entries in path (new files, links, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> None:
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A new directory is only durable once its parent's entry for it is.
    fsync_dir(path.parent)


def write_message(path: Path, data: bytes) -> None:
    """Create path exclusively, write data and fsync it; the caller fsyncs the directory."""
    _ensure_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        raise
    os.close(fd)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard link src to dst, or copy and fsync where links are not possible."""
    _ensure_dir(dst.parent)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
