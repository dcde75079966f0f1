"""Read-ahead of one SQLite b-tree into the OS page cache, many pages at a time.

SQLite reads a b-tree one page after the other, each read waiting for the one before. When the
database file is not in the OS page cache (the first SELECT after a start, or after the kernel
evicted the file), the covering index a SELECT scans (idx_messages_live: ~430 pages for 100,000
messages, spread over a file that is mostly full-text index) costs one disk round trip per page:
~40 ms of the 80 ms first SELECT of 100,000 messages (bench/PROFILE.md, item 16).

``prefetch_btree`` walks the b-tree level by level with the file format's documented page layout
(https://www.sqlite.org/fileformat2.html §1.6, "B-tree Pages"): it asks the kernel for all pages
of a level at once (``posix_fadvise(WILLNEED)``, so the device gets them in parallel), then reads
them to find the child page numbers of the next level. It only reads the main database file and
only gives hints: a page that is newer in the WAL, or anything that does not parse as a b-tree
page, just ends that branch, so a wrong guess costs a few useless reads and never a wrong answer.

It reads through a descriptor SQLite already has open (``sqlite_fd``) and never opens or closes
the database file itself: closing any descriptor of a file drops all of the process's POSIX
locks on it, SQLite's included, and a lost lock lets another process checkpoint and delete the
WAL under us (https://www.sqlite.org/howtocorrupt.html §2.2).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["prefetch_btree", "sqlite_fd"]

_INTERIOR = (0x02, 0x05)  # interior index / interior table b-tree page (fileformat2 §1.6)
_LEAF = (0x0A, 0x0D)
_FILE_HEADER = 100  # page 1 starts with the database file header


def _children(page: bytes, pgno: int, npages: int) -> list[int] | None:
    """Child page numbers of an interior b-tree page; None for a leaf or an unparsable page."""
    hdr = _FILE_HEADER if pgno == 1 else 0
    if len(page) < hdr + 12 or page[hdr] not in _INTERIOR:
        return None
    ncells = int.from_bytes(page[hdr + 3 : hdr + 5], "big")
    ptrs = hdr + 12  # the cell pointer array follows the 12-byte interior page header
    if ptrs + 2 * ncells > len(page):
        return None
    out: list[int] = []
    for i in range(ncells):
        off = int.from_bytes(page[ptrs + 2 * i : ptrs + 2 * i + 2], "big")
        if off + 4 > len(page):
            return None
        out.append(int.from_bytes(page[off : off + 4], "big"))  # the cell's left child pointer
    out.append(int.from_bytes(page[hdr + 8 : hdr + 12], "big"))  # the right-most pointer
    if any(not 1 <= c <= npages for c in out):
        return None
    return out


def sqlite_fd(path: Path) -> int | None:
    """A descriptor of the file at ``path`` that this process has open (an SQLite connection's),
    found in /proc/self/fd; None elsewhere than Linux or when there is none. Not to be closed."""
    if not hasattr(os, "posix_fadvise"):
        return None
    try:
        st = os.stat(path)
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            fst = os.fstat(int(name))
        except (OSError, ValueError):
            continue
        if (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino):
            return int(name)
    return None


def prefetch_btree(fd: int, root: int, page_size: int, max_pages: int) -> int:
    """Bring the b-tree rooted at page ``root`` of the database file open as ``fd`` into the OS
    page cache, at most ``max_pages`` pages, in key order; the number of pages read. ``fd`` is
    only read at offsets (pread), never closed."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    npages = os.fstat(fd).st_size // page_size
    seen: set[int] = set()
    level = [root]
    done = 0
    while level and done < max_pages:
        level = [p for p in level if p not in seen and 1 <= p <= npages][: max_pages - done]
        seen.update(level)
        for p in level:
            os.posix_fadvise(fd, (p - 1) * page_size, page_size, os.POSIX_FADV_WILLNEED)
        nxt: list[int] = []
        for p in level:
            kids = _children(os.pread(fd, page_size, (p - 1) * page_size), p, npages)
            if kids is not None:
                nxt.extend(kids)
        done += len(level)
        level = nxt
    return done
