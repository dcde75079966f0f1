"""Words of a message for the Bayesian junk filter, as mox's junk/parse.go.

Tokens come from the address and subject header fields (decoded, RFC 2047; prefixed with the
lower-cased field name, only words longer than 3 characters, as mox), and from the text of
text/plain and text/html parts (MIME, RFC 2045: transfer encoding and charset undone; for HTML
only the text outside script and style elements). Words are lower-cased runs of letters and
digits of 3 to 30 characters. Optionally pairs of consecutive words ("2-grams") are added.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import re
from email.message import EmailMessage
from html.parser import HTMLParser

__all__ = ["HEADER_FIELDS", "message_words", "text_words"]

# The header fields mox takes words from.
HEADER_FIELDS = ("from", "to", "cc", "bcc", "reply-to", "subject", "sender", "return-path")

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_LEN = 3
MAX_LEN = 30
MAX_TEXT = 1024 * 1024  # only the first MiB of text per part counts


def _split(text: str) -> list[str]:
    return [m.group(0).lower() for m in _WORD.finditer(text)]


def text_words(text: str, *, onegrams: bool = True, twograms: bool = False) -> set[str]:
    """The tokens of a piece of text."""
    words = [w for w in _split(text[:MAX_TEXT]) if MIN_LEN <= len(w) <= MAX_LEN]
    out: set[str] = set()
    if onegrams:
        out.update(words)
    if twograms:
        out.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return out


class _HtmlText(HTMLParser):
    """Collects the text of an HTML document, without script and style contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html[:MAX_TEXT])
        parser.close()
    except (ValueError, AssertionError):
        pass  # broken markup: keep what was read
    return " ".join(parser.parts)


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def message_words(data: bytes, *, onegrams: bool = True, twograms: bool = False) -> set[str]:
    """The tokens of a whole message: header words with their field prefix, and body words."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out: set[str] = set()
    for name in HEADER_FIELDS:
        for value in msg.get_all(name, []):
            try:
                text = str(value)
            except (ValueError, LookupError):
                continue
            # mox: header words longer than 3 characters, prefixed with the field name.
            out.update(f"{name}:{w}" for w in _split(text) if 3 < len(w) <= MAX_LEN)
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        subtype = part.get_content_subtype()
        if subtype == "plain":
            text = _part_text(part)
        elif subtype == "html":
            text = html_text(_part_text(part))
        else:
            continue
        out |= text_words(text, onegrams=onegrams, twograms=twograms)
    return out
