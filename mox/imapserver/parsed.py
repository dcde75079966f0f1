"""Cached parse results of a message: ENVELOPE, BODY, BODYSTRUCTURE and PREVIEW.

Message files never change, so what FETCH derives from their MIME structure is computed once and
kept in the store (``Account.save_parsed``/``get_parsed``, opaque JSON there). The IMAP values are
stored as JSON: NIL as null, numbers as numbers, strings as {"s": text} (or {"b": base64} when not
UTF-8), lists as lists. The ENVELOPE is also kept in its wire form ("envelope_wire") when that is
ASCII and the same with and without UTF=8 enabled, so FETCH ENVELOPE writes it without decoding or
rendering anything (bench/PROFILE.md); entries without it (older ones) are decoded as before.

PREVIEW (RFC 8970 §3): at most 200 characters of the first text part (text/plain preferred, else
text/html with the tags removed), whitespace collapsed, quoted lines ("> ...") left out.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mox.imap.responses import NIL, Atom, ListValue, Rendered, Str, Value, render_value
from mox.imapserver.message import Part, body_structure, envelope, parse_part, text_parts

PREVIEW_CHARS: Final = 200
_TAG_RE: Final = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.DOTALL | re.IGNORECASE)
_WS_RE: Final = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Parsed:
    envelope: Value
    body: Value
    bodystructure: Value
    preview: str

    @property
    def fetch_envelope(self) -> Value:
        return self.envelope


def envelope_wire(envelope: Value) -> str | None:
    """The wire form of an ENVELOPE when it can be cached as is (see the module docstring)."""
    wire = render_value(envelope, utf8=False)
    if not wire.isascii() or wire != render_value(envelope, utf8=True):
        return None
    return wire.decode("ascii")


def to_json(v: Value) -> Any:
    if v is NIL:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, Str):
        data = v.data.encode("utf-8") if isinstance(v.data, str) else v.data
        try:
            return {"s": data.decode("utf-8")}
        except UnicodeDecodeError:
            return {"b": base64.b64encode(data).decode("ascii")}
    if isinstance(v, Atom):
        return {"a": v.text}
    if isinstance(v, ListValue):
        return [to_json(x) for x in v.items]
    raise TypeError(f"cannot cache {v!r}")


def from_json(j: Any) -> Value:
    if j is None:
        return NIL
    if isinstance(j, int):
        return j
    if isinstance(j, list):
        return ListValue(tuple(from_json(x) for x in j))
    if isinstance(j, dict):
        if "s" in j:
            return Str(str(j["s"]).encode("utf-8"))
        if "b" in j:
            return Str(base64.b64decode(j["b"]))
        return Atom(str(j["a"]))
    raise ValueError(f"bad cached value {j!r}")


def preview(root: Part) -> str:
    """The PREVIEW text of a message (RFC 8970 §3)."""
    plain: str | None = None
    htmltext: str | None = None
    for part, text in _leaves(root):
        subtype = part.content_type[1]
        if subtype == "plain" and plain is None:
            plain = text
        elif subtype == "html" and htmltext is None:
            htmltext = html.unescape(_TAG_RE.sub(" ", text))
    text = plain if plain is not None else htmltext or ""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(">")]
    return _WS_RE.sub(" ", " ".join(lines)).strip()[:PREVIEW_CHARS]


def _leaves(root: Part) -> list[tuple[Part, str]]:
    out: list[tuple[Part, str]] = []
    stack = [root]
    while stack and len(out) < 10:
        part = stack.pop(0)
        if part.multipart:
            stack = part.children + stack
        elif part.content_type[0] == "text":
            out.append((part, next(iter(text_parts(part)), "")))
    return out


def compute(data: bytes) -> Parsed:
    root = parse_part(data)
    return Parsed(
        envelope=envelope(root),
        body=body_structure(root, extensible=False),
        bodystructure=body_structure(root, extensible=True),
        preview=preview(root),
    )


def dumps(p: Parsed) -> str:
    return json.dumps(
        {
            "v": 1,
            "envelope": to_json(p.envelope),
            "envelope_wire": envelope_wire(p.envelope),
            "body": to_json(p.body),
            "bodystructure": to_json(p.bodystructure),
            "preview": p.preview,
        },
        separators=(",", ":"),
    )


class StoredParsed:
    """A cache entry as read from the store: each value is decoded when first used, so a FETCH
    of ENVELOPE does not decode the body structures too (bench/PROFILE.md)."""

    __slots__ = ("_fallback", "_j", "_values")

    def __init__(self, j: dict[str, Any], fallback: Callable[[], Parsed] | None = None) -> None:
        self._j = j
        self._values: dict[str, Value] = {}
        self._fallback = fallback

    def _get(self, name: str) -> Value:
        v = self._values.get(name)
        if v is None:
            try:
                v = from_json(self._j[name])
            except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
                if self._fallback is None:
                    raise
                v = getattr(self._fallback(), name)  # a broken entry: parse the message again
            self._values[name] = v
        return v

    @property
    def envelope(self) -> Value:
        return self._get("envelope")

    @property
    def fetch_envelope(self) -> Value:
        """For FETCH: the cached wire form when there is one, else the decoded value."""
        wire = self._j.get("envelope_wire")
        if isinstance(wire, str) and wire.isascii():
            return Rendered(wire.encode("ascii"))
        return self.envelope

    @property
    def body(self) -> Value:
        return self._get("body")

    @property
    def bodystructure(self) -> Value:
        return self._get("bodystructure")

    @property
    def preview(self) -> str:
        return str(self._j["preview"])


def loads(text: str, fallback: Callable[[], Parsed] | None = None) -> StoredParsed | None:
    """A cached parse result, None when the cache entry is of another version or broken (its
    values are checked when used: ValueError, KeyError or TypeError then)."""
    try:
        j = json.loads(text)
    except ValueError:
        return None
    if not isinstance(j, dict) or j.get("v") != 1:
        return None
    if not all(k in j for k in ("envelope", "body", "bodystructure", "preview")):
        return None
    return StoredParsed(j, fallback)
