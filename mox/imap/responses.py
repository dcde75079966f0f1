"""Typed IMAP server responses and their serialisation, RFC 9051 §7 and §9 (``response``).

Values inside responses are a small closed set: ``NIL``, ``int`` (number), ``Atom`` (written as is),
``Str`` (a string: quoted when possible, else a literal), ``Literal`` (always a literal),
``MailboxName`` (UTF-8 or modified UTF-7, RFC 3501 §5.1.3, depending on what the client enabled) and
``ListValue``.

Responses are frozen dataclasses; ``serialize(response, utf8=...)`` renders one to bytes including
the final CRLF. Untagged data responses each have their own type (``Exists``, ``Fetch``,
``ListData``...).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal as TLiteral
from typing import TypeAlias

from mox.imap import utf7
from mox.imap.abnf import can_quote


class _Nil(enum.Enum):
    NIL = "NIL"


NIL = _Nil.NIL
"""The IMAP ``nil`` value."""


@dataclass(frozen=True, slots=True)
class Atom:
    """Written exactly as given: keywords, flags, fetch item names like ``BODY[1]<0>``."""

    text: str


@dataclass(frozen=True, slots=True)
class Str:
    """An IMAP ``string``: quoted when all bytes allow it (RFC 9051 §4.3), a literal otherwise."""

    data: bytes | str


@dataclass(frozen=True, slots=True)
class Literal:
    """Always a literal (message content); ``binary`` makes it a ``literal8`` (RFC 3516 §4.2)."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class MailboxName:
    """A mailbox name, encoded in modified UTF-7 unless the client accepts UTF-8 (RFC 9051 §5.1)."""

    name: str


@dataclass(frozen=True, slots=True)
class ListValue:
    """A parenthesised list."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A value already in its wire form, the same with and without UTF-8 (``render_value`` with
    both settings gave these bytes): written as is. FETCH ENVELOPE from the parse cache."""

    data: bytes


Value: TypeAlias = "_Nil | int | Atom | Str | Literal | MailboxName | ListValue | Rendered"


def atoms(words: Iterable[str]) -> ListValue:
    """A list of atoms, e.g. flags."""
    return ListValue(tuple(Atom(w) for w in words))


def nstring(data: bytes | str | None) -> Value:
    """``nstring = string / nil``."""
    return NIL if data is None else Str(data)


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """``resp-text-code`` (RFC 9051 §7.1): ``[NAME args]``."""

    name: str
    args: tuple[Value, ...] = ()


Status: TypeAlias = TLiteral["OK", "NO", "BAD"]
UntaggedKind: TypeAlias = TLiteral["OK", "NO", "BAD", "BYE", "PREAUTH"]


@dataclass(frozen=True, slots=True)
class Tagged:
    """``response-tagged = tag SP resp-cond-state CRLF`` (RFC 9051 §7.1)."""

    tag: str
    status: Status
    text: str
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Untagged:
    """Untagged status response: ``* OK/NO/BAD/BYE/PREAUTH [code] text`` (RFC 9051 §7.1)."""

    kind: UntaggedKind
    text: str
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Continuation:
    """``continue-req = "+" SP (resp-text / base64) CRLF`` (RFC 9051 §7.5).

    With ``data`` set, the line carries base64 of it (a SASL challenge, RFC 9051 §6.2.2).
    """

    text: str = "Ready"
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Capability:
    """``* CAPABILITY ...`` (RFC 9051 §7.2.2)."""

    caps: tuple[str, ...]

    def values(self) -> tuple[Value, ...]:
        return (Atom("CAPABILITY"), *(Atom(c) for c in self.caps))


@dataclass(frozen=True, slots=True)
class Enabled:
    """``* ENABLED ...`` (RFC 5161 §3.2, RFC 9051 §7.2.1)."""

    caps: tuple[str, ...]

    def values(self) -> tuple[Value, ...]:
        return (Atom("ENABLED"), *(Atom(c) for c in self.caps))


@dataclass(frozen=True, slots=True)
class Exists:
    """``* n EXISTS`` (RFC 9051 §7.4.1)."""

    count: int

    def values(self) -> tuple[Value, ...]:
        return (self.count, Atom("EXISTS"))


@dataclass(frozen=True, slots=True)
class Recent:
    """``* n RECENT``, IMAP4rev1 only (RFC 3501 §7.3.2); always 0 here."""

    count: int

    def values(self) -> tuple[Value, ...]:
        return (self.count, Atom("RECENT"))


@dataclass(frozen=True, slots=True)
class Expunge:
    """``* seq EXPUNGE`` (RFC 9051 §7.5.1)."""

    seq: int

    def values(self) -> tuple[Value, ...]:
        return (self.seq, Atom("EXPUNGE"))


@dataclass(frozen=True, slots=True)
class Flags:
    """``* FLAGS (...)`` (RFC 9051 §7.3.5)."""

    flags: tuple[str, ...]

    def values(self) -> tuple[Value, ...]:
        return (Atom("FLAGS"), atoms(self.flags))


@dataclass(frozen=True, slots=True)
class ListData:
    """``* LIST (attrs) "/" name`` or ``* LSUB ...`` (RFC 9051 §7.3.1, RFC 3501 §7.2.3)."""

    attrs: tuple[str, ...]
    delimiter: str | None
    name: str
    kind: TLiteral["LIST", "LSUB"] = "LIST"
    # mbox-list-extended (RFC 9051 §9, RFC 5258 §6), e.g. ("CHILDINFO", ("SUBSCRIBED"))
    extended: tuple[tuple[str, Value], ...] = ()

    def values(self) -> tuple[Value, ...]:
        delim: Value = NIL if self.delimiter is None else Str(self.delimiter)
        out: list[Value] = [Atom(self.kind), atoms(self.attrs), delim, MailboxName(self.name)]
        if self.extended:
            flat: list[Value] = []
            for k, v in self.extended:
                flat += [Str(k), v]
            out.append(ListValue(tuple(flat)))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class StatusData:
    """``* STATUS name (item value ...)`` (RFC 9051 §7.3.2)."""

    mailbox: str
    items: tuple[tuple[str, int], ...]

    def values(self) -> tuple[Value, ...]:
        flat: list[Value] = []
        for k, v in self.items:
            flat += [Atom(k), v]
        return (Atom("STATUS"), MailboxName(self.mailbox), ListValue(tuple(flat)))


@dataclass(frozen=True, slots=True)
class SearchData:
    """``* SEARCH n ... [(MODSEQ m)]`` (RFC 3501 §7.2.5, RFC 7162 §3.1.5), for clients that did
    not enable IMAP4rev2; also ``* SORT n ...`` (RFC 5256 §4)."""

    numbers: tuple[int, ...]
    modseq: int | None = None
    name: str = "SEARCH"

    def values(self) -> tuple[Value, ...]:
        out: list[Value] = [Atom(self.name), *self.numbers]
        if self.modseq is not None:
            out.append(ListValue((Atom("MODSEQ"), self.modseq)))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ESearchData:
    """``* ESEARCH (TAG "t" [MAILBOX m UIDVALIDITY n]) [UID] name value ...`` (RFC 9051 §7.3.4,
    RFC 4731 §3.1, RFC 7377 §2.1)."""

    tag: str
    uid: bool
    items: tuple[tuple[str, int | str], ...]
    mailbox: str | None = None
    uidvalidity: int = 0

    def values(self) -> tuple[Value, ...]:
        correlator: list[Value] = [Atom("TAG"), Str(self.tag)]
        if self.mailbox is not None:
            correlator += [Atom("MAILBOX"), MailboxName(self.mailbox)]
            correlator += [Atom("UIDVALIDITY"), self.uidvalidity]
        out: list[Value] = [Atom("ESEARCH"), ListValue(tuple(correlator))]
        if self.uid:
            out.append(Atom("UID"))
        for k, v in self.items:
            out += [Atom(k), v if isinstance(v, int) else Atom(v)]
        return tuple(out)


@dataclass(frozen=True, slots=True)
class ThreadData:
    """``* THREAD (1 2)(3 (4)(5))`` (RFC 5256 §4); text is the rendered thread list."""

    text: str

    def values(self) -> tuple[Value, ...]:
        return (Atom("THREAD"), Atom(self.text)) if self.text else (Atom("THREAD"),)


@dataclass(frozen=True, slots=True)
class Vanished:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10)."""

    uids: str
    earlier: bool = False

    def values(self) -> tuple[Value, ...]:
        if self.earlier:
            return (Atom("VANISHED"), ListValue((Atom("EARLIER"),)), Atom(self.uids))
        return (Atom("VANISHED"), Atom(self.uids))


@dataclass(frozen=True, slots=True)
class QuotaRoot:
    """``* QUOTAROOT mailbox root ...`` (RFC 9208 §5.2)."""

    mailbox: str
    roots: tuple[str, ...]

    def values(self) -> tuple[Value, ...]:
        return (Atom("QUOTAROOT"), MailboxName(self.mailbox), *(Str(r) for r in self.roots))


@dataclass(frozen=True, slots=True)
class Quota:
    """``* QUOTA root (resource usage limit ...)`` (RFC 9208 §5.1)."""

    root: str
    resources: tuple[tuple[str, int, int], ...]

    def values(self) -> tuple[Value, ...]:
        flat: list[Value] = []
        for name, usage, limit in self.resources:
            flat += [Atom(name), usage, limit]
        return (Atom("QUOTA"), Str(self.root), ListValue(tuple(flat)))


@dataclass(frozen=True, slots=True)
class Metadata:
    """``* METADATA mailbox (entry value ...)`` (RFC 5464 §4.4.1); "" is the server."""

    mailbox: str
    entries: tuple[tuple[str, Value], ...]

    def values(self) -> tuple[Value, ...]:
        flat: list[Value] = []
        for k, v in self.entries:
            flat += [Str(k), v]
        return (Atom("METADATA"), MailboxName(self.mailbox), ListValue(tuple(flat)))


@dataclass(frozen=True, slots=True)
class Fetch:
    """``* seq FETCH (name value ...)`` (RFC 9051 §7.5.2); names like ``BODY[TEXT]<0>``.

    With ``uidfetch`` the number is a UID and the response is ``UIDFETCH`` (RFC 9586 §3.3).
    """

    seq: int
    items: tuple[tuple[str, Value], ...]
    uidfetch: bool = False

    def values(self) -> tuple[Value, ...]:
        flat: list[Value] = []
        for k, v in self.items:
            flat += [Atom(k), v]
        kind = "UIDFETCH" if self.uidfetch else "FETCH"
        return (self.seq, Atom(kind), ListValue(tuple(flat)))


@dataclass(frozen=True, slots=True)
class Namespace:
    """``* NAMESPACE (("" "/")) NIL NIL``: one personal namespace (RFC 9051 §7.3.3)."""

    prefix: str = ""
    delimiter: str = "/"

    def values(self) -> tuple[Value, ...]:
        personal = ListValue((ListValue((Str(self.prefix), Str(self.delimiter))),))
        return (Atom("NAMESPACE"), personal, NIL, NIL)


@dataclass(frozen=True, slots=True)
class IdData:
    """``* ID ("name" "value" ...)`` (RFC 2971 §3.2)."""

    params: tuple[tuple[str, str], ...]

    def values(self) -> tuple[Value, ...]:
        if not self.params:
            return (Atom("ID"), NIL)
        flat: list[Value] = []
        for k, v in self.params:
            flat += [Str(k), Str(v)]
        return (Atom("ID"), ListValue(tuple(flat)))


DataResponse: TypeAlias = (
    Capability
    | Enabled
    | Exists
    | Recent
    | Expunge
    | Flags
    | ListData
    | StatusData
    | SearchData
    | ESearchData
    | ThreadData
    | Vanished
    | QuotaRoot
    | Quota
    | Metadata
    | Fetch
    | Namespace
    | IdData
)
Response: TypeAlias = "Tagged | Untagged | Continuation | DataResponse"

# Quoted strings longer than this go out as literals; purely cosmetic.
_MAX_QUOTED = 1024


def _text(text: str) -> bytes:
    # text = 1*TEXT-CHAR: never let a CR or LF through (RFC 9051 §9).
    cleaned = text.replace("\r", " ").replace("\n", " ")
    return cleaned.encode("utf-8") if cleaned else b"."


def _string(data: bytes, utf8: bool, out: list[bytes]) -> None:
    if len(data) <= _MAX_QUOTED and can_quote(data, utf8=utf8):
        out.append(b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
    else:
        out.append(b"{%d}\r\n" % len(data))
        out.append(data)


def _value(v: Value, utf8: bool, out: list[bytes]) -> None:
    if v is NIL:
        out.append(b"NIL")
    elif isinstance(v, bool):
        raise TypeError("bool is not an IMAP value")
    elif isinstance(v, int):
        out.append(b"%d" % v)
    elif isinstance(v, Atom):
        out.append(v.text.encode("utf-8"))
    elif isinstance(v, Str):
        data = v.data.encode("utf-8") if isinstance(v.data, str) else v.data
        _string(data, utf8, out)
    elif isinstance(v, Literal):
        # literal8 = "~{" number64 "}" CRLF *OCTET (RFC 3516 §4.2, RFC 9051 §9)
        out.append(b"%s{%d}\r\n" % (b"~" if v.binary else b"", len(v.data)))
        out.append(v.data)
    elif isinstance(v, MailboxName):
        # RFC 9051 §5.1 and RFC 6855 §3: UTF-8 once enabled, else modified UTF-7 (RFC 3501 §5.1.3).
        name = v.name if utf8 else utf7.encode(v.name)
        _string(name.encode("utf-8"), utf8, out)
    elif isinstance(v, ListValue):
        out.append(b"(")
        _values(v.items, utf8, out)
        out.append(b")")
    elif isinstance(v, Rendered):
        out.append(v.data)
    else:
        raise TypeError(f"not an IMAP value: {v!r}")


def render_value(v: Value, *, utf8: bool) -> bytes:
    """The wire form of one value."""
    out: list[bytes] = []
    _value(v, utf8, out)
    return b"".join(out)


def _values(items: Sequence[Value], utf8: bool, out: list[bytes]) -> None:
    for i, item in enumerate(items):
        if i:
            out.append(b" ")
        _value(item, utf8, out)


def _code(code: ResponseCode | None, utf8: bool, out: list[bytes]) -> None:
    if code is None:
        return
    out.append(b"[" + code.name.encode("ascii"))
    if code.args:
        out.append(b" ")
        _values(code.args, utf8, out)
    out.append(b"] ")


def serialize(response: Response, *, utf8: bool = False) -> bytes:
    """Render one response, including the final CRLF."""
    out: list[bytes] = []
    if isinstance(response, Tagged):
        out.append(f"{response.tag} {response.status} ".encode("ascii"))
        _code(response.code, utf8, out)
        out.append(_text(response.text))
    elif isinstance(response, Untagged):
        out.append(f"* {response.kind} ".encode("ascii"))
        _code(response.code, utf8, out)
        out.append(_text(response.text))
    elif isinstance(response, Continuation):
        if response.data is not None:
            out.append(b"+ " + base64.b64encode(response.data))
        else:
            out.append(b"+ " + _text(response.text))
    else:
        out.append(b"* ")
        _values(response.values(), utf8, out)
    out.append(b"\r\n")
    return b"".join(out)
