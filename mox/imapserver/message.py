"""Message structure for FETCH and SEARCH: MIME parts as byte ranges, ENVELOPE, BODYSTRUCTURE.

RFC 9051 §6.4.5 (section numbering), §7.5.2 (ENVELOPE, BODY, BODYSTRUCTURE), RFC 2045/2046 (MIME),
RFC 5322 (addresses), RFC 3516 (BINARY).

Implementation notes:
- Headers are parsed with the stdlib ``email`` package (``compat32`` policy, so ENVELOPE gets the
  raw header values with encoded-words intact, as RFC 9051 §7.5.2 wants). The part boundaries are
  found here on the raw bytes, because BODY[section] must return the exact octets and the ``email``
  package does not keep offsets.
- Malformed input never raises: a multipart without boundary is treated as a single text part,
  nesting is cut off at ``MAX_DEPTH``, unparsable addresses become a mailbox without host.
- Everything is pure (bytes in, values out), so it is tested without sockets.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.utils
import quopri
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message as EmailMessage
from typing import Final

from mox.imap.responses import NIL, ListValue, Str, Value, nstring

MAX_DEPTH: Final = 40
_HEADER_PARSER: Final = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_FOLD_RE: Final = re.compile(r"\r?\n(?=[ \t])")


@dataclass(slots=True)
class Part:
    """A MIME entity: its header (with the terminating blank line) and body, as raw bytes."""

    header: bytes
    body: bytes
    headers: EmailMessage
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the encapsulated message of a message/rfc822 part
    multipart: bool = False

    @property
    def content_type(self) -> tuple[str, str]:
        maintype, _, subtype = self.headers.get_content_type().partition("/")
        return maintype, subtype


def split_header(data: bytes) -> tuple[bytes, bytes]:
    """Header (including the empty line that ends it) and body (RFC 5322 §2.1)."""
    if data.startswith(b"\r\n"):
        return data[:2], data[2:]
    if data.startswith(b"\n"):
        return data[:1], data[1:]
    ends = [(i, len(sep)) for sep in (b"\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    if not ends:
        return data, b""
    i, n = min(ends)
    return data[: i + n], data[i + n :]


def _split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    # RFC 2046 §5.1.1: a delimiter is CRLF "--" boundary at the start of a line; the CRLF before it
    # belongs to the delimiter; "--" after the boundary closes; the preamble is ignored.
    rx = re.compile(rb"(?:\A|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    parts: list[bytes] = []
    start: int | None = None
    for m in rx.finditer(body):
        if start is not None:
            parts.append(body[start : m.start()])
        if m.group(1):
            return parts
        start = m.end()
    if start is not None:
        parts.append(body[start:])
    return parts


def parse_part(data: bytes, *, default_type: str = "text/plain", depth: int = 0) -> Part:
    """Parse a message or body part into its MIME tree."""
    header, body = split_header(data)
    headers = _HEADER_PARSER.parsebytes(header)
    if default_type != "text/plain":
        headers.set_default_type(default_type)
    part = Part(header, body, headers)
    maintype, subtype = part.content_type
    if depth >= MAX_DEPTH:
        return part
    if maintype == "multipart":
        boundary = headers.get_boundary()
        if boundary:
            # RFC 2046 §5.1.5: the parts of a digest default to message/rfc822.
            child_default = "message/rfc822" if subtype == "digest" else "text/plain"
            raw = _split_multipart(body, boundary.encode("utf-8", "surrogateescape"))
            part.children = [
                parse_part(p, default_type=child_default, depth=depth + 1) for p in raw
            ]
            part.multipart = bool(part.children)
    elif maintype == "message" and subtype in ("rfc822", "global"):
        part.message = parse_part(body, depth=depth + 1)
    return part


def _subparts(node: Part, message_context: bool) -> list[Part]:
    if node.multipart:
        return node.children
    if message_context:
        return [node]  # RFC 9051 §6.4.5: a non-multipart message only has a part 1, its body
    if node.message is not None:
        enc = node.message
        return enc.children if enc.multipart else [enc]
    return []


def find_part(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part addressed by part numbers (RFC 9051 §6.4.5); root for ()."""
    node = root
    for i, n in enumerate(path):
        subs = _subparts(node, message_context=i == 0)
        if not 1 <= n <= len(subs):
            return None
        node = subs[n - 1]
    return node


def header_fields(header: bytes) -> Iterator[tuple[str, bytes]]:
    """(lowercased name, raw field incl. continuation lines and line end) for each header field."""
    lines = header.splitlines(keepends=True)
    current: list[bytes] = []
    name = ""
    for line in lines:
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        if current:
            yield name, b"".join(current)
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        current = [line]
    if current:
        yield name, b"".join(current)


def select_header_fields(header: bytes, names: tuple[str, ...], *, exclude: bool) -> bytes:
    """HEADER.FIELDS[.NOT]: the (non-)matching fields plus the empty line (RFC 9051 §6.4.5)."""
    wanted = {n.lower() for n in names}
    out = [raw for name, raw in header_fields(header) if (name in wanted) != exclude]
    return b"".join(out) + b"\r\n"


def decode_transfer_encoding(part: Part) -> bytes | None:
    """The body with its transfer encoding undone; None if the encoding is unknown (RFC 3516)."""
    cte = str(part.headers.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if cte in ("7bit", "8bit", "binary", ""):
        return part.body
    if cte == "base64":
        # Lenient like most MUAs: ignore characters outside the alphabet, repair the padding.
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", part.body)
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except binascii.Error:
            return b""
    if cte == "quoted-printable":
        return quopri.decodestring(part.body)
    return None


def _raw(value: str) -> bytes:
    # compat32 headers are str with surrogate escapes for 8-bit bytes; get the bytes back.
    return _FOLD_RE.sub("", value).strip().encode("utf-8", "surrogateescape")


def raw_values(msg: EmailMessage, name: str) -> list[str]:
    """All values of a header as stored: unfolded, 8-bit bytes kept as surrogate escapes.

    ``Message.get`` of the compat32 policy replaces 8-bit bytes with U+FFFD; ``raw_items`` does not.
    """
    lname = name.lower()
    return [_FOLD_RE.sub("", str(v)) for k, v in msg.raw_items() if k.lower() == lname]


def _header_bytes(msg: EmailMessage, name: str) -> bytes | None:
    values = raw_values(msg, name)
    return _raw(values[0]) if values else None


def decoded_header(msg: EmailMessage, name: str) -> list[str]:
    """All values of a header with RFC 2047 encoded-words decoded (for SEARCH)."""
    out: list[str] = []
    for text in raw_values(msg, name):
        # Raw 8-bit header bytes are taken as UTF-8 (RFC 6532), then encoded-words are decoded.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            out.append(str(make_header(decode_header(text))))
        except (ValueError, LookupError, UnicodeError):
            out.append(text)
    return out


# --- addresses (RFC 5322 §3.4) ---

_SPECIALS: Final = frozenset('()<>[]:;@\\,."')


def _tokens(text: str) -> list[tuple[str, str]]:
    """Tokens ("q" quoted, "a" atom, "d" domain literal, "s" special); comments dropped."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            out.append(("q", "".join(buf)))
            i = j + 1
        elif ch == "(":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            i = j
        elif ch == "[":
            j = text.find("]", i)
            j = n if j < 0 else j + 1
            out.append(("d", text[i:j]))
            i = j
        elif ch in _SPECIALS:
            out.append(("s", ch))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIALS and text[j] not in " \t\r\n":
                j += 1
            out.append(("a", text[i:j]))
            i = j
    return out


@dataclass(frozen=True, slots=True)
class Address:
    """``address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`` (RFC 9051 §9)."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    def value(self) -> Value:
        def s(x: str | None) -> Value:
            return NIL if x is None else Str(x.encode("utf-8", "surrogateescape"))

        return ListValue((s(self.name), s(self.adl), s(self.mailbox), s(self.host)))


def _word(tokens: list[tuple[str, str]]) -> str:
    return "".join(t for _, t in tokens)


def _phrase(tokens: list[tuple[str, str]]) -> str:
    # display-name = phrase: words separated by single spaces, "." sticks to the word before.
    out = ""
    for kind, text in tokens:
        if kind == "s" and text == ".":
            out += "."
        else:
            out += (" " if out else "") + text
    return out


def parse_address_list(text: str) -> list[Address]:
    """Addresses; a group is a start (mailbox=name, host=None) and end marker (RFC 9051 §7.5.2)."""
    toks = _tokens(text)
    out: list[Address] = []
    i, n = 0, len(toks)

    def mailbox(end_chars: str) -> None:
        nonlocal i
        phrase: list[tuple[str, str]] = []
        while i < n and not (toks[i][0] == "s" and toks[i][1] in "<@:" + end_chars):
            phrase.append(toks[i])
            i += 1
        if i < n and toks[i] == ("s", "<"):
            i += 1
            inner: list[tuple[str, str]] = []
            while i < n and toks[i] != ("s", ">"):
                inner.append(toks[i])
                i += 1
            i += 1  # ">"
            adl = None
            if ("s", ":") in inner:  # obs-route (RFC 5322 §4.4)
                cut = inner.index(("s", ":"))
                adl, inner = _word(inner[:cut]) or None, inner[cut + 1 :]
            at = next((k for k, t in enumerate(inner) if t == ("s", "@")), None)
            local = _word(inner if at is None else inner[:at])
            host = "" if at is None else _word(inner[at + 1 :])
            out.append(Address(_phrase(phrase) or None, adl, local, host))
        elif i < n and toks[i] == ("s", "@"):
            i += 1
            dom: list[tuple[str, str]] = []
            while i < n and not (toks[i][0] == "s" and toks[i][1] in end_chars):
                dom.append(toks[i])
                i += 1
            out.append(Address(None, None, _word(phrase), _word(dom)))
        elif phrase:
            out.append(Address(None, None, _word(phrase), ""))

    while i < n:
        # A group: display-name ":" [mailbox-list] ";" (RFC 5322 §3.4).
        j = i
        while j < n and not (toks[j][0] == "s" and toks[j][1] in ":<@,;"):
            j += 1
        if j < n and toks[j] == ("s", ":"):
            out.append(Address(None, None, _phrase(toks[i:j]), None))
            i = j + 1
            while i < n and toks[i] != ("s", ";"):
                mailbox(",;")
                if i < n and toks[i] == ("s", ","):
                    i += 1
            i += 1  # ";"
            out.append(Address(None, None, None, None))
        else:
            mailbox(",")
        while i < n and toks[i][0] == "s" and toks[i][1] in ",;":
            i += 1
    return out


def _addresses(msg: EmailMessage, name: str) -> list[Address]:
    out: list[Address] = []
    for value in raw_values(msg, name):
        out += parse_address_list(value)
    return out


def _address_list(addrs: list[Address]) -> Value:
    return ListValue(tuple(a.value() for a in addrs)) if addrs else NIL


def envelope(part: Part) -> Value:
    """ENVELOPE of a message (RFC 9051 §7.5.2)."""
    msg = part.headers
    frm = _addresses(msg, "From")
    # RFC 9051 §7.5.2: absent or empty Sender/Reply-To take the value of From.
    sender = _addresses(msg, "Sender") or frm
    reply_to = _addresses(msg, "Reply-To") or frm
    return ListValue(
        (
            nstring(_header_bytes(msg, "Date")),
            nstring(_header_bytes(msg, "Subject")),
            _address_list(frm),
            _address_list(sender),
            _address_list(reply_to),
            _address_list(_addresses(msg, "To")),
            _address_list(_addresses(msg, "Cc")),
            _address_list(_addresses(msg, "Bcc")),
            nstring(_header_bytes(msg, "In-Reply-To")),
            nstring(_header_bytes(msg, "Message-ID")),
        )
    )


# --- BODY / BODYSTRUCTURE (RFC 9051 §7.5.2, §9 "body") ---


def _params(msg: EmailMessage, header: str) -> list[tuple[str, str]]:
    params = msg.get_params(header=header) or []
    out: list[tuple[str, str]] = []
    for k, v in params[1:]:
        value = email.utils.collapse_rfc2231_value(v)
        out.append((k.upper(), value))
    return out


def _param_list(params: list[tuple[str, str]]) -> Value:
    # body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
    if not params:
        return NIL
    flat: list[Value] = []
    for k, v in params:
        flat += [Str(k), Str(v.encode("utf-8", "surrogateescape"))]
    return ListValue(tuple(flat))


def _lines(body: bytes) -> int:
    n = body.count(b"\n")
    return n + 1 if body and not body.endswith(b"\n") else n


def _extension(part: Part) -> list[Value]:
    # body-fld-dsp SP body-fld-lang SP body-fld-loc
    msg = part.headers
    dsp: Value = NIL
    raw_dsp = msg.get("Content-Disposition")
    if raw_dsp is not None:
        kind = msg.get_params(header="content-disposition")
        if kind:
            dsp = ListValue((Str(kind[0][0]), _param_list(_params(msg, "content-disposition"))))
    lang: Value = NIL
    raw_lang = _header_bytes(msg, "Content-Language")
    if raw_lang:
        langs = [x.strip() for x in raw_lang.split(b",") if x.strip()]
        lang = ListValue(tuple(Str(x) for x in langs)) if langs else NIL
    return [dsp, lang, nstring(_header_bytes(msg, "Content-Location"))]


def body_structure(part: Part, *, extensible: bool = True) -> Value:
    """BODYSTRUCTURE (extensible=True) or BODY (False) of a message or part."""
    maintype, subtype = part.content_type
    if part.multipart:
        items: list[Value] = [body_structure(ch, extensible=extensible) for ch in part.children]
        items.append(Str(subtype.upper()))
        if extensible:
            # body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
            items.append(_param_list(_params(part.headers, "content-type")))
            items += _extension(part)
        return ListValue(tuple(items))
    msg = part.headers
    params = _params(msg, "content-type")
    if maintype == "multipart":
        # A multipart without usable boundary: describe it as plain text (see module notes).
        maintype, subtype, params = "text", "plain", []
    if maintype == "text" and "Content-Type" not in msg:
        params = [("CHARSET", "US-ASCII")]  # RFC 2045 §5.2 default
    cte = _header_bytes(msg, "Content-Transfer-Encoding")
    out: list[Value] = [
        Str(maintype.upper()),
        Str(subtype.upper()),
        _param_list(params),
        nstring(_header_bytes(msg, "Content-ID")),
        nstring(_header_bytes(msg, "Content-Description")),
        Str(cte.upper() if cte else b"7BIT"),
        len(part.body),
    ]
    if part.message is not None:
        # body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
        out += [
            envelope(part.message),
            body_structure(part.message, extensible=extensible),
            _lines(part.body),
        ]
    elif maintype == "text":
        out.append(_lines(part.body))  # body-fld-lines
    if extensible:
        # body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.append(nstring(_header_bytes(msg, "Content-MD5")))
        out += _extension(part)
    return ListValue(tuple(out))


def text_parts(part: Part, depth: int = 0) -> Iterator[str]:
    """Decoded text of all text/* leaves (and encapsulated messages), for SEARCH BODY/TEXT."""
    if depth > MAX_DEPTH:
        return
    if part.multipart:
        for ch in part.children:
            yield from text_parts(ch, depth + 1)
        return
    if part.message is not None:
        for name, _ in header_fields(part.message.header):
            yield from decoded_header(part.message.headers, name)
        yield from text_parts(part.message, depth + 1)
        return
    maintype, _ = part.content_type
    if maintype != "text":
        return
    data = decode_transfer_encoding(part)
    if data is None:
        data = part.body
    charset = part.headers.get_content_charset() or "utf-8"
    try:
        yield data.decode(charset, "replace")
    except LookupError:
        yield data.decode("utf-8", "replace")
