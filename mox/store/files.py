"""Message files: one immutable file per message, durable before its row is committed.

Layout as the Go mox (reference §1.8), with random names: msg/<2 hex>/<32 hex>; the directory
changes every BUCKET_RUN files (see new_message_path). A file is created with O_EXCL, written
once, fsynced, and never rewritten; a crash leaves at worst an orphan file without a database
row. The store's writer creates the files of a batch of deliveries with create_message and makes
them durable together with sync_files, just before the batch's commit.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

__all__ = [
    "create_message",
    "fsync_dir",
    "link_or_copy",
    "new_message_path",
    "sync_files",
    "write_message",
]


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


def create_message(path: Path, data: bytes, *, fsync: bool = False) -> int:
    """Create path exclusively and write data (fsync it too with `fsync`); returns the open
    descriptor, which the caller closes (after sync_files). The caller fsyncs the directory."""
    _ensure_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        raise
    return fd


def write_message(path: Path, data: bytes) -> None:
    """Create path exclusively, write data and fsync it; the caller fsyncs the directory."""
    os.close(create_message(path, data, fsync=True))


def sync_files(fds: list[int]) -> None:
    """fsync the files written through these descriptors (create_message).

    Writeback of all of them is started first, so their blocks are allocated and written
    together and the first fsync's journal commit covers them all; one fsync after another
    without that cost a journal commit each (bench/PROFILE.md: 50 files of 4 KiB, 10-12 ms
    without, 4 ms with, and a quarter of the CPU of one fsync per file in a thread each). On
    Linux, POSIX_FADV_DONTNEED starts writeback of dirty pages (and drops only clean pages,
    which these are not yet); elsewhere it is at worst a hint that does nothing. Durability
    comes from the fsyncs alone.
    """
    if len(fds) > 1 and hasattr(os, "posix_fadvise"):
        for fd in fds:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    for fd in fds:
        os.fsync(fd)


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
