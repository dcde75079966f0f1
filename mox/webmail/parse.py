"""Reading stored messages for the webmail: list summaries, the full view, parts and threads.

Messages are parsed with the stdlib `email` package (RFC 5322 headers, RFC 2045/2046 MIME,
RFC 2047 encoded words, RFC 2231 parameters). Summaries need only the header section and are
cached in memory by message id: stored message files never change (mox.store), so a cached
summary is valid as long as the message exists. Parts are addressed by their position in the
MIME tree ("0" for a single-part message, "1.2" for the second child of the first child), as
IMAP section numbers (RFC 9051 §6.4.5).

Threading: messages are joined by Message-ID, In-Reply-To and References (RFC 5322 §3.6.4), as
the first steps of the REFERENCES algorithm of RFC 5256 §2.2 (no subject merging).
"""

from __future__ import annotations

import email.policy
import email.utils
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from typing import Any, Final

from mox.store import Account
from mox.store import Message as StoredMessage

__all__ = [
    "Attachment",
    "Summary",
    "View",
    "filename",
    "find_part",
    "parse_full",
    "summaries",
    "threads",
    "view",
]

MAX_HEADER_BYTES: Final = 256 * 1024  # a summary reads at most this much of a message file
MAX_CACHE: Final = 50_000  # summaries kept in memory, least recently used go first
MAX_PARTS: Final = 500  # MIME parts looked at per message (bounded walk)
MAX_DEPTH: Final = 30

_HEADER_PARSER: Final = BytesHeaderParser(policy=email.policy.default)
_PARSER: Final = BytesParser(policy=email.policy.default)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the message list shows of a message, and what threading needs."""

    from_: list[dict[str, str]]
    to: list[dict[str, str]]
    subject: str
    date: str  # the Date header as ISO 8601, "" when missing or malformed
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    attachments: bool  # a multipart/mixed message: probably has attachments


@dataclass(frozen=True, slots=True)
class Attachment:
    part: str
    filename: str
    content_type: str
    size: int
    content_id: str


@dataclass(frozen=True, slots=True)
class View:
    headers: dict[str, Any]
    text: str
    html: bool  # whether there is an HTML body (served separately, sanitised)
    attachments: list[Attachment]


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError, AttributeError):
        return ""
    return "" if value is None else " ".join(str(value).split())


def _addresses(msg: Message, name: str) -> list[dict[str, str]]:
    try:
        values = [str(v) for v in msg.get_all(name, [])]
    except (ValueError, TypeError, IndexError, AttributeError):
        return []
    return [{"name": n, "address": a} for n, a in email.utils.getaddresses(values) if a or n][:200]


def _msgids(text: str) -> tuple[str, ...]:
    # RFC 5322 §3.6.4: msg-id is "<" id-left "@" id-right ">"; lenient about the inside.
    out = []
    for token in text.replace(">", "> ").split():
        token = token.strip()
        if token.startswith("<") and token.endswith(">") and len(token) > 2:
            out.append(token)
    return tuple(out[:100])


def _date(msg: Message) -> str:
    text = _header(msg, "Date")
    if not text:
        return ""
    try:
        return email.utils.parsedate_to_datetime(text).isoformat()
    except (ValueError, TypeError, IndexError):
        return ""


def summary_of(header: bytes) -> Summary:
    msg = _HEADER_PARSER.parsebytes(header)
    ctype = msg.get_content_type() if msg.get("Content-Type") else "text/plain"
    return Summary(
        from_=_addresses(msg, "From"),
        to=_addresses(msg, "To") + _addresses(msg, "Cc"),
        subject=_header(msg, "Subject"),
        date=_date(msg),
        message_id=(_msgids(_header(msg, "Message-ID")) or ("",))[0],
        in_reply_to=(_msgids(_header(msg, "In-Reply-To")) or ("",))[0],
        references=_msgids(_header(msg, "References")),
        attachments=ctype == "multipart/mixed",
    )


def _read_header(acc: Account, msg: StoredMessage) -> bytes:
    with acc.message_path(msg).open("rb") as f:
        data = f.read(MAX_HEADER_BYTES)
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = data.find(sep)
        if end >= 0:
            return data[: end + len(sep)]
    return data


_cache: OrderedDict[tuple[str, int], Summary] = OrderedDict()


def summaries(acc: Account, msgs: Sequence[StoredMessage]) -> dict[int, Summary]:
    """Summaries by message id; a message whose file is gone (expunged meanwhile) is left out.
    Blocking file reads: call in a worker thread."""
    out: dict[int, Summary] = {}
    for m in msgs:
        key = (str(acc.dir), m.id)
        s = _cache.get(key)
        if s is None:
            try:
                s = summary_of(_read_header(acc, m))
            except OSError:
                continue
            _cache[key] = s
            while len(_cache) > MAX_CACHE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        out[m.id] = s
    return out


def threads(msgs: Sequence[StoredMessage], sums: dict[int, Summary]) -> list[list[StoredMessage]]:
    """Group messages into conversations (by Message-ID/In-Reply-To/References), each thread
    oldest first, threads by their newest message, newest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for m in msgs:
        s = sums.get(m.id)
        own = f"#{m.id}"
        parent.setdefault(own, own)
        if s is None:
            continue
        for ref in (s.message_id, s.in_reply_to, *s.references):
            if ref:
                parent.setdefault(ref, ref)
                union(own, ref)
    groups: dict[str, list[StoredMessage]] = {}
    for m in msgs:
        groups.setdefault(find(f"#{m.id}"), []).append(m)
    result = [sorted(g, key=lambda m: (m.internal_date, m.uid)) for g in groups.values()]
    result.sort(key=lambda g: (g[-1].internal_date, g[-1].uid), reverse=True)
    return result


def parse_full(data: bytes) -> EmailMessage:
    msg = _PARSER.parsebytes(data)
    if not isinstance(msg, EmailMessage):  # policy.default makes EmailMessage
        raise TypeError("unexpected message class")
    return msg


def _walk(msg: Message, path: str = "", depth: int = 0) -> Iterator[tuple[str, Message]]:
    """Leaf parts with their section path (IMAP numbering, RFC 9051 §6.4.5 BODY[section])."""
    if depth > MAX_DEPTH:
        return
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for i, sub in enumerate(payload, 1):
                if isinstance(sub, Message):
                    yield from _walk(sub, f"{path}.{i}" if path else str(i), depth + 1)
        return
    yield (path or "0"), msg


def parts(msg: Message) -> list[tuple[str, Message]]:
    out = []
    for i, item in enumerate(_walk(msg)):
        if i >= MAX_PARTS:
            break
        out.append(item)
    return out


def find_part(msg: Message, path: str) -> Message | None:
    for p, part in parts(msg):
        if p == path:
            return part
    return None


def part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)  # RFC 2045 §6: undo the transfer encoding
    except (ValueError, TypeError, LookupError):
        return b""
    return payload if isinstance(payload, bytes) else b""


def part_text(part: Message) -> str:
    data = part_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, TypeError, IndexError):
        name = ""
    return " ".join(str(name).split())[:200]


def body_parts(msg: Message) -> tuple[Message | None, Message | None]:
    """(text/plain, text/html) body parts, as RFC 2046 §5.1.4 multipart/alternative picks."""
    text = html = None
    for path, part in parts(msg):
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if disposition == "attachment":
            continue
        if ctype == "text/plain" and text is None and not filename(part):
            text = part
        elif ctype == "text/html" and html is None:
            html = part
        if path == "0" and ctype not in ("text/plain", "text/html"):
            break
    return text, html


def view(msg: EmailMessage) -> View:
    text_part, html_part = body_parts(msg)
    attachments = []
    for path, part in parts(msg):
        if part is text_part or part is html_part:
            continue
        attachments.append(
            Attachment(
                part=path,
                filename=filename(part),
                content_type=part.get_content_type(),
                size=len(part_bytes(part)),
                content_id=_header(part, "Content-ID"),
            )
        )
    headers = {
        "from": _addresses(msg, "From"),
        "to": _addresses(msg, "To"),
        "cc": _addresses(msg, "Cc"),
        "bcc": _addresses(msg, "Bcc"),  # only drafts have one
        "reply_to": _addresses(msg, "Reply-To"),
        "subject": _header(msg, "Subject"),
        "date": _date(msg),
        "message_id": (_msgids(_header(msg, "Message-ID")) or ("",))[0],
        "in_reply_to": (_msgids(_header(msg, "In-Reply-To")) or ("",))[0],
        "references": list(_msgids(_header(msg, "References"))),
    }
    text = part_text(text_part) if text_part is not None else ""
    if text_part is None and html_part is not None:
        text = ""
    return View(headers, text.replace("\r\n", "\n"), html_part is not None, attachments)
