"""Import and export of mbox and Maildir (as mox's `import` and `export`, reference §1.8).

mbox (mboxrd, https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml): messages start
at a line "From " after a blank line (or at the start); ">From ", ">>From " ... lines are
unescaped by one ">". Lines end in LF in the file and CRLF in the store (RFC 5322 §2.1). Flags
come from the Status (R: \\Seen) and X-Status (A: \\Answered, F: \\Flagged, T: \\Draft,
D: \\Deleted) headers and X-Keywords; these headers are taken out of the stored message (the
flags carry them) and written back on export.

Maildir (https://cr.yp.to/proto/maildir.html): files in cur/ and new/; the info ":2,FLAGS" gives
D \\Draft, F \\Flagged, P $Forwarded, R \\Answered, S \\Seen, T \\Deleted, and lower-case letters
keywords by Dovecot's dovecot-keywords file (line "N name" for letter a+N).

Streaming: an mbox is read line by line and one message at a time is held in memory, so the
memory used is bounded by the largest message (MAX_MESSAGE), never by the file.

Resumable: each imported message is delivered with meta {"import_sha256": hash of its stored
bytes}; a new run skips as many copies of a hash as the mailbox already has, so an interrupted
import continues where it stopped, and a message that is in the source twice is imported twice.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from mox.store.account import Account
from mox.store.models import Message

__all__ = [
    "MAX_MESSAGE",
    "ImportResult",
    "export_maildir",
    "export_mbox",
    "import_maildir",
    "import_mbox",
    "read_mbox",
]

MAX_MESSAGE = 100 * 1024 * 1024  # larger messages are not imported (as the default SMTP limit)
META_KEY = "import_sha256"

Progress = Callable[[int, int, int], None]  # (imported, skipped, bytes read so far)

_STATUS_FLAGS = {"R": "\\Seen"}
_XSTATUS_FLAGS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
_MAILDIR_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_FROM_LINE = re.compile(rb"^>*From ")


@dataclass(slots=True)
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already imported by an earlier run
    too_large: int = 0


@dataclass(frozen=True, slots=True)
class MboxMessage:
    data: bytes  # CRLF line ends, unescaped, Status/X-Status/X-Keywords removed
    flags: frozenset[str]
    date: datetime | None  # from the From_ line
    offset: int  # bytes of the file read up to the end of this message


def _to_crlf(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line
    if line.endswith(b"\n"):
        return line[:-1] + b"\r\n"
    return line


def _from_line_date(line: bytes) -> datetime | None:
    # "From sender Thu Nov 25 08:00:00 2026": the last five words are an asctime date.
    words = line.decode("ascii", "replace").split()
    if len(words) < 7:
        return None
    try:
        return datetime.strptime(" ".join(words[-5:]), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def _split_flag_headers(raw: bytes) -> tuple[bytes, frozenset[str]]:
    """Take Status, X-Status and X-Keywords out of the header; return the message and flags."""
    end = raw.find(b"\r\n\r\n")
    header, body = (raw, b"") if end < 0 else (raw[: end + 2], raw[end + 2 :])
    flags: set[str] = set()
    kept: list[bytes] = []
    skipping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        skipping = key in (b"status", b"x-status", b"x-keywords")
        text = value.decode("utf-8", "replace").strip()
        if key == b"status":
            flags.update(_STATUS_FLAGS[c] for c in text if c in _STATUS_FLAGS)
        elif key == b"x-status":
            flags.update(_XSTATUS_FLAGS[c] for c in text if c in _XSTATUS_FLAGS)
        elif key == b"x-keywords":
            flags.update(k.lower() for k in re.split(r"[\s,]+", text) if _keyword_ok(k))
        if not skipping:
            kept.append(line)
    return b"".join(kept) + body, frozenset(flags)


def _keyword_ok(word: str) -> bool:
    # RFC 9051 §9 flag-keyword = atom: no specials, no controls, not a \System flag.
    return bool(word) and word.isascii() and not re.search(r'[(){%*"\\\]\x00-\x20\x7f]', word)


def read_mbox(f: BinaryIO, limit: int = MAX_MESSAGE) -> Iterator[MboxMessage | int]:
    """The messages of an mbox file, one at a time; a message over `limit` is skipped and its
    size yielded as an int instead."""
    current: list[bytes] = []
    size = 0
    too_big = False
    date: datetime | None = None
    started = False
    previous_blank = True
    offset = 0

    def finish() -> MboxMessage | int:
        if too_big:
            return size
        raw = b"".join(current)
        if raw.endswith(b"\r\n\r\n"):
            raw = raw[:-2]  # the blank line before the next From_ belongs to the mbox format
        data, flags = _split_flag_headers(raw)
        return MboxMessage(data, flags, date, offset)

    for line in f:
        if line.startswith(b"From ") and previous_blank:
            if started:
                yield finish()
            started = True
            current, size, too_big = [], 0, False
            date = _from_line_date(line)
            offset += len(line)
            previous_blank = False
            continue
        offset += len(line)
        previous_blank = line in (b"\n", b"\r\n")
        if not started:
            continue  # text before the first From_ line is not a message
        if _FROM_LINE.match(line) and line.startswith(b">"):
            line = line[1:]  # mboxrd: one ">" less
        line = _to_crlf(line)
        size += len(line)
        if size > limit:
            too_big = True
            current = []
        elif not too_big:
            current.append(line)
    if started:
        yield finish()


Put = Callable[[bytes, frozenset[str], datetime | None], Awaitable[bool]]


async def _importer(acc: Account, mailbox: str) -> Put:
    """A deliver function that skips messages an earlier run imported (by content hash)."""
    if acc.get_mailbox(mailbox) is None:
        await acc.create_mailbox(mailbox)
    mb = acc.get_mailbox(mailbox)
    assert mb is not None  # noqa: S101 (just created)
    have: Counter[str] = Counter()
    for m in acc.list_messages(mb.id):
        h = acc.message_meta(m).get(META_KEY)
        if isinstance(h, str):
            have[h] += 1

    async def put(data: bytes, flags: frozenset[str], date: datetime | None) -> bool:
        h = hashlib.sha256(data).hexdigest()
        if have[h] > 0:  # one of the copies an earlier run imported; nothing kept per new message
            have[h] -= 1
            return False
        await acc.deliver(mailbox, data, flags=flags, internal_date=date, meta={META_KEY: h})
        return True

    return put


async def import_mbox(
    acc: Account, mailbox: str, path: Path, progress: Progress | None = None
) -> ImportResult:
    result = ImportResult()
    put = await _importer(acc, mailbox)
    with path.open("rb") as f:
        for item in read_mbox(f):
            if isinstance(item, int):
                result.too_large += 1
                continue
            if await put(item.data, item.flags, item.date):
                result.imported += 1
            else:
                result.skipped += 1
            if progress is not None:
                progress(result.imported, result.skipped, item.offset)
    return result


def _maildir_files(path: Path) -> list[Path]:
    files = [p for sub in ("cur", "new") for p in (path / sub).glob("*") if p.is_file()]
    if not files and not (path / "cur").is_dir():
        raise FileNotFoundError(f"{path} is not a Maildir (no cur/ or new/)")

    def key(p: Path) -> tuple[float, str]:
        return (p.stat().st_mtime, p.name)

    return sorted(files, key=key)


def _dovecot_keywords(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = (path / "dovecot-keywords").read_text("utf-8", "replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        num, _, name = line.strip().partition(" ")
        if num.isdigit() and int(num) < 26 and _keyword_ok(name):
            out[chr(ord("a") + int(num))] = name.lower()
    return out


async def import_maildir(
    acc: Account, mailbox: str, path: Path, progress: Progress | None = None
) -> ImportResult:
    result = ImportResult()
    keywords = _dovecot_keywords(path)
    put = await _importer(acc, mailbox)
    done = 0
    for file in _maildir_files(path):
        st = file.stat()
        done += st.st_size
        if st.st_size > MAX_MESSAGE:
            result.too_large += 1
            continue
        _, _, info = file.name.partition(":2,")
        flags = {_MAILDIR_FLAGS[c] for c in info if c in _MAILDIR_FLAGS}
        flags |= {keywords[c] for c in info if c in keywords}
        with file.open("rb") as f:
            data = b"".join(_to_crlf(line) for line in f)
        date = datetime.fromtimestamp(st.st_mtime, UTC)
        if await put(data, frozenset(flags), date):
            result.imported += 1
        else:
            result.skipped += 1
        if progress is not None:
            progress(result.imported, result.skipped, done)
    return result


def _mailboxes(acc: Account, mailbox: str | None) -> list[tuple[int, str]]:
    boxes = [(mb.id, mb.name) for mb in acc.list_mailboxes()]
    if mailbox is None:
        return boxes
    mb = acc.get_mailbox(mailbox)
    if mb is None:
        raise FileNotFoundError(f"no mailbox {mailbox!r}")
    return [(mb.id, mb.name)]


def _mbox_flag_headers(flags: frozenset[str]) -> bytes:
    status = "RO" if "\\Seen" in flags else "O"
    xstatus = "".join(c for c, f in _XSTATUS_FLAGS.items() if f in flags)
    out = f"Status: {status}\nX-Status: {xstatus}\n"
    words = sorted(f for f in flags if not f.startswith("\\"))
    if words:
        out += f"X-Keywords: {' '.join(words)}\n"
    return out.encode()


def _write_mbox_message(f: BinaryIO, msg: Message, data: bytes) -> None:
    date = msg.internal_date.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y")
    f.write(f"From MAILER-DAEMON {date}\n".encode())
    f.write(_mbox_flag_headers(msg.flags))
    for line in data.splitlines(keepends=True):
        line = line[:-2] + b"\n" if line.endswith(b"\r\n") else line
        if _FROM_LINE.match(line):
            line = b">" + line  # mboxrd escaping
        f.write(line)
    if not data.endswith(b"\n"):
        f.write(b"\n")
    f.write(b"\n")


def _safe_name(name: str) -> Path:
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    return Path(*parts) if parts else Path("_")


def export_mbox(
    acc: Account, dest: Path, mailbox: str | None = None, progress: Progress | None = None
) -> int:
    """Write each mailbox to dest/<name>.mbox; returns the number of messages written."""
    n = 0
    written = 0
    for mid, name in _mailboxes(acc, mailbox):
        target = dest / _safe_name(name).with_suffix(".mbox")
        if target.name == ".mbox":
            target = target.with_name("_.mbox")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as f:
            for msg in acc.list_messages(mid):
                data = acc.read_message(msg)
                _write_mbox_message(f, msg, data)
                n += 1
                written += len(data)
                if progress is not None:
                    progress(n, 0, written)
    return n


def export_maildir(
    acc: Account, dest: Path, mailbox: str | None = None, progress: Progress | None = None
) -> int:
    """Write each mailbox as a Maildir dest/<name>/{cur,new,tmp} with a dovecot-keywords file;
    returns the number of messages written."""
    n = 0
    written = 0
    for mid, name in _mailboxes(acc, mailbox):
        target = dest / _safe_name(name)
        for sub in ("cur", "new", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        msgs = acc.list_messages(mid)
        words = sorted({f for m in msgs for f in m.flags if not f.startswith("\\")})[:26]
        letters = {w: chr(ord("a") + i) for i, w in enumerate(words)}
        if words:
            (target / "dovecot-keywords").write_text(
                "".join(f"{i} {w}\n" for i, w in enumerate(words)), "utf-8"
            )
        reverse = {f: c for c, f in _MAILDIR_FLAGS.items()}
        for msg in msgs:
            info = sorted(reverse[f] for f in msg.flags if f in reverse)
            info += sorted(letters[f] for f in msg.flags if f in letters)
            ts = msg.internal_date.timestamp()
            file = target / "cur" / f"{int(ts)}.M{msg.id}U{msg.uid}.mox:2,{''.join(info)}"
            data = acc.read_message(msg)
            file.write_bytes(data)
            os.utime(file, (ts, ts))
            n += 1
            written += len(data)
            if progress is not None:
                progress(n, 0, written)
    return n
