"""Full-text index of messages: decoded text for SQLite FTS5, and the queries on it.

IMAP SEARCH BODY and TEXT are case-insensitive substring matches on the decoded text (RFC 9051
§6.4.4: "contains the specified string"). The index (table ``fts``, see db.py migrations 3 and 5)
uses FTS5's trigram tokenizer (https://www.sqlite.org/fts5.html#the_trigram_tokenizer) with
detail=none: a GLOB pattern ``*needle*`` of three or more characters is looked up in the index (the
rows holding all of its trigrams) and then checked against the stored text, so it is exactly a
substring match. (Without positions the index costs about half as much to build as with them,
bench/PROFILE.md; FTS5 phrase queries need positions.) Both the indexed text and the needle are
case-folded here (Python's ``str.casefold``), so the tokenizer and GLOB are case-sensitive and
folding is the same on both sides. Needles shorter than three characters cannot use trigrams; they
are matched with ``instr`` on the stored text, which still reads no message file.

Text extraction: header values with RFC 2047 encoded-words decoded; text/* parts with their
transfer encoding (RFC 2045 §6) and charset undone; the headers of attached messages
(message/rfc822, RFC 2046 §5.2.1) count as body text, as in the Go mox's store/search.go.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from typing import Final

__all__ = ["MAX_TEXT", "extract_text", "glob_literal", "match_expression"]

# Text beyond this many characters per column is not indexed (huge text parts are rare; the
# index must stay bounded).
MAX_TEXT: Final = 2 * 1024 * 1024
_PARSER: Final = email.parser.BytesParser(policy=email.policy.compat32)


def decode_value(text: str) -> str:
    """A header value with its RFC 2047 encoded-words decoded (as it is when that fails)."""
    if "=?" not in text:
        # No encoded-word (RFC 2047 §2): decode_header returns the text as it is; the
        # email.header round trip was most of the header indexing (bench/PROFILE.md).
        return text
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text


def _decoded_header_values(msg: Message) -> Iterator[str]:
    for _, value in msg.raw_items():
        yield decode_value(str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)  # undoes base64 / quoted-printable
    except (ValueError, TypeError, LookupError):
        payload = None
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _body_texts(msg: Message, depth: int = 0) -> Iterator[str]:
    if depth > 40:
        return
    if msg.is_multipart():
        payload = msg.get_payload()
        if not isinstance(payload, list):
            return
        for sub in payload:
            if not isinstance(sub, Message):
                continue
            if msg.get_content_type() in ("message/rfc822", "message/global"):
                yield from _decoded_header_values(sub)
            yield from _body_texts(sub, depth + 1)
        return
    if msg.get_content_maintype() == "text":
        yield _part_text(msg)


def extract_text(data: bytes) -> tuple[str, str]:
    """(headers, body) of a message as case-folded text for the index."""
    try:
        msg = _PARSER.parsebytes(data)
        headers = "\n".join(_decoded_header_values(msg))
        body = "\n".join(_body_texts(msg))
    except Exception:  # malformed mail must never fail a delivery
        return "", data.decode("utf-8", "replace").casefold()[:MAX_TEXT]
    return headers.casefold()[:MAX_TEXT], body.casefold()[:MAX_TEXT]


def glob_literal(text: str) -> str:
    """`text` as a GLOB pattern matching exactly itself: the wildcards * ? and [ in brackets."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def match_expression(needle: str, *, text: bool) -> tuple[str, str, str] | None:
    """What finds the fts rows whose body (or, with text, any column) contains the case-folded
    needle: ``("index", subquery of rowids, value)`` for needles the trigram index can look up,
    ``("scan", condition on fts, value)`` for shorter ones, both with the named parameter
    ``:needle``; None for an empty needle, which every message matches."""
    folded = needle.casefold()
    if not folded:
        return None
    if len(folded) >= 3:
        pattern = "*" + glob_literal(folded) + "*"
        if text:
            # Each GLOB on its own uses the index; an OR of them would scan the table.
            sql = (
                "SELECT rowid FROM fts WHERE headers GLOB :needle "
                "UNION SELECT rowid FROM fts WHERE body GLOB :needle"
            )
        else:
            sql = "SELECT rowid FROM fts WHERE body GLOB :needle"
        return "index", sql, pattern
    if text:
        return "scan", "(instr(fts.body, :needle) > 0 OR instr(fts.headers, :needle) > 0)", folded
    return "scan", "instr(fts.body, :needle) > 0", folded
