"""Token-level reading of an IMAP command for the parsers, RFC 9051 §9 (formal syntax).

A ``Cursor`` walks a ``RawCommand`` chunk by chunk; where a chunk ends before the last one, a
literal follows, which ``string()``/``astring()`` return as bytes. Syntax errors raise ``ImapBad``.

Mailbox names are returned decoded: UTF-8 when the client enabled UTF8=ACCEPT or IMAP4rev2
(RFC 9051 §5.1, RFC 6855 §3), else modified UTF-7 (RFC 3501 §5.1.3). Quirk: a non-UTF8 client that
sends raw UTF-8 gets it accepted as such instead of a BAD.

Keywords are lowercased and system flags get their canonical case, as the store expects.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from mox.imap import abnf, utf7
from mox.imap import commands as c
from mox.imap.errors import ImapBad
from mox.imap.receiver import RawCommand


class Cursor:
    """Position in a RawCommand; a literal sits after each chunk but the last."""

    def __init__(self, raw: RawCommand, *, utf8: bool) -> None:
        self.chunks = raw.chunks
        self.literals = raw.literals
        self.ci = 0
        self.pos = 0
        self.utf8 = utf8

    @property
    def chunk(self) -> bytes:
        return self.chunks[self.ci]

    def at_literal(self) -> bool:
        return self.pos == len(self.chunk) and self.ci < len(self.literals)

    def at_end(self) -> bool:
        return self.ci == len(self.chunks) - 1 and self.pos == len(self.chunk)

    def peek(self, n: int = 1) -> bytes:
        return self.chunk[self.pos : self.pos + n]

    def take(self, s: bytes) -> bool:
        """Consume s (case-insensitive) if it is next."""
        n = len(s)
        if self.chunk[self.pos : self.pos + n].upper() == s.upper():
            self.pos += n
            return True
        return False

    def expect(self, s: bytes, what: str | None = None) -> None:
        if not self.take(s):
            raise ImapBad(f"expected {what or repr(s.decode())}{self.where()}")

    def sp(self) -> None:
        self.expect(b" ", "space")

    def end(self) -> None:
        if not self.at_end():
            raise ImapBad(f"unexpected data at end of command{self.where()}")

    def where(self) -> str:
        if self.at_literal():
            return " (at literal)"
        rest = self.chunk[self.pos : self.pos + 20]
        if not rest:
            return " (at end of line)"
        return f" near {rest.decode('ascii', 'replace')!r}"

    def match(self, rx: re.Pattern[bytes]) -> re.Match[bytes] | None:
        m = rx.match(self.chunk, self.pos)
        if m is not None:
            self.pos = m.end()
        return m

    def atom(self, what: str = "atom") -> str:
        m = self.match(abnf.ATOM_RE)
        if m is None:
            raise ImapBad(f"expected {what}{self.where()}")
        return m.group().decode("ascii")

    def keyword(self) -> str:
        """An atom, upper-cased (command and item names)."""
        return self.atom().upper()

    def number(self, *, nonzero: bool = False, big: bool = False) -> int:
        # number = 1*DIGIT (32-bit); nz-number; number64 (63-bit) (RFC 9051 §9)
        m = self.match(abnf.NUMBER_RE)
        if m is None:
            raise ImapBad(f"expected number{self.where()}")
        n = int(m.group())
        if n > (abnf.MAX_NUMBER64 if big else abnf.MAX_NUMBER):
            raise ImapBad("number too large")
        if nonzero and n == 0:
            raise ImapBad("number must not be zero")
        return n

    def literal(self) -> bytes:
        if not self.at_literal():
            raise ImapBad(f"expected literal{self.where()}")
        data = self.literals[self.ci]
        self.ci += 1
        self.pos = 0
        return data

    def quoted(self) -> bytes:
        # quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR escapes only DQUOTE and "\" (RFC 9051 §9)
        self.expect(b'"', "quoted string")
        data = self.chunk
        out = bytearray()
        i = self.pos
        while i < len(data):
            b = data[i]
            if b == 0x22:
                self.pos = i + 1
                return bytes(out)
            if b == 0x5C:
                if i + 1 >= len(data) or data[i + 1] not in abnf.QUOTED_SPECIALS:
                    raise ImapBad("invalid escape in quoted string")
                out.append(data[i + 1])
                i += 2
                continue
            if b == 0:
                raise ImapBad("NUL in quoted string")
            out.append(b)
            i += 1
        raise ImapBad("unterminated quoted string")

    def string(self) -> bytes:
        # string = quoted / literal
        if self.at_literal():
            return self.literal()
        return self.quoted()

    def astring(self, what: str = "astring") -> bytes:
        # astring = 1*ASTRING-CHAR / string
        if self.at_literal() or self.peek() == b'"':
            return self.string()
        m = self.match(abnf.ASTRING_ATOM_RE)
        if m is None:
            raise ImapBad(f"expected {what}{self.where()}")
        return m.group()

    def nstring(self) -> bytes | None:
        if self.take(b"NIL"):
            return None
        return self.string()

    def text(self, data: bytes, what: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ImapBad(f"invalid UTF-8 in {what}") from e

    def mailbox(self) -> str:
        # mailbox = "INBOX" / astring (RFC 9051 §9); INBOX case-folding is left to the store.
        return decode_mailbox(self.astring("mailbox name"), utf8=self.utf8)

    def list_mailbox(self) -> str:
        # list-mailbox = 1*list-char / string
        if self.at_literal() or self.peek() == b'"':
            data = self.string()
        else:
            m = self.match(abnf.LIST_MAILBOX_RE)
            if m is None:
                raise ImapBad(f"expected mailbox pattern{self.where()}")
            data = m.group()
        return decode_mailbox(data, utf8=self.utf8)

    def seqset(self) -> c.SeqSet:
        if self.take(b"$"):
            # RFC 5182 §2.1 / RFC 9051 §9: sequence-set =/ seq-last-command ("$")
            return c.SeqSet((), saved=True)
        m = self.match(abnf.SEQUENCE_SET_RE)
        if m is None:
            raise ImapBad(f"expected sequence set{self.where()}")
        if self.peek() in (b"$", b":", b","):
            raise ImapBad("invalid sequence set")
        return parse_seqset(m.group())

    def flag(self, *, storable: bool) -> str:
        if self.take(b"\\"):
            if self.peek() == b"*":
                raise ImapBad("\\* is not a flag")
            name = "\\" + self.atom("flag")
            canonical = abnf.SYSTEM_FLAG_CANONICAL.get(name.lower())
            if canonical is not None:
                return canonical
            if name.lower() == "\\recent" and not storable:
                return "\\Recent"
            # flag-extension: servers must not accept undefined system flags (RFC 9051 §2.3.2).
            raise ImapBad(f"unknown system flag {name}")
        return self.atom("flag").lower()

    def flag_list(self, *, storable: bool = True) -> tuple[str, ...]:
        # flag-list = "(" [flag *(SP flag)] ")"
        self.expect(b"(", "flag list")
        flags: list[str] = []
        if not self.take(b")"):
            while True:
                flags.append(self.flag(storable=storable))
                if self.take(b")"):
                    break
                self.sp()
        return tuple(dict.fromkeys(flags))

    def date(self) -> date:
        # date = date-text / DQUOTE date-text DQUOTE
        quoted = self.take(b'"')
        m = self.match(abnf.DATE_TEXT_RE)
        if m is None:
            raise ImapBad(f"expected date like 1-Feb-2024{self.where()}")
        if quoted:
            self.expect(b'"')
        month = abnf.MONTH_NUMBER.get(m.group(2).decode("ascii").lower())
        if month is None:
            raise ImapBad("invalid month in date")
        try:
            return date(int(m.group(3)), month, int(m.group(1)))
        except ValueError as e:
            raise ImapBad("invalid date") from e


def parse_seqset(text: bytes) -> c.SeqSet:
    """Parse a sequence-set such as ``1:3,5,7:*`` (RFC 9051 §9)."""
    if abnf.SEQUENCE_SET_RE.fullmatch(text) is None:
        raise ImapBad("invalid sequence set")

    def num(s: bytes) -> int | None:
        if s == b"*":
            return None
        n = int(s)
        if n == 0 or n > abnf.MAX_NUMBER:
            raise ImapBad("invalid number in sequence set")
        return n

    ranges = []
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        start = num(a)
        ranges.append(c.SeqRange(start, num(b) if b else start))
    return c.SeqSet(tuple(ranges))


def decode_mailbox(data: bytes, *, utf8: bool) -> str:
    """Mailbox name from the wire: UTF-8, or modified UTF-7 (RFC 3501 §5.1.3)."""
    try:
        name = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImapBad("mailbox name is not valid UTF-8") from e
    if not utf8 and name.isascii():
        try:
            name = utf7.decode(name)
        except ValueError as e:
            raise ImapBad(f"invalid modified UTF-7 mailbox name: {e}") from e
    return name


def parse_date_time(data: bytes) -> datetime:
    """``date-time`` without its quotes, e.g. `` 7-Feb-1994 21:52:25 -0800`` (RFC 9051 §9)."""
    m = abnf.DATE_TIME_RE.fullmatch(data)
    if m is None:
        raise ImapBad("invalid date-time")
    month = abnf.MONTH_NUMBER.get(m.group(2).decode("ascii").lower())
    if month is None:
        raise ImapBad("invalid month in date-time")
    zh, zm = int(m.group(8)), int(m.group(9))
    if zm >= 60 or zh > 23:
        raise ImapBad("invalid zone in date-time")
    offset = timedelta(hours=zh, minutes=zm)
    tz = timezone(-offset if m.group(7) == b"-" else offset)
    try:
        return datetime(
            int(m.group(3)),
            month,
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=tz,
        )
    except ValueError as e:
        raise ImapBad("invalid date-time") from e
