"""Typed IMAP commands: one frozen, slotted dataclass per command (RFC 9051 §6).

The parser (``mox.imap.parser``) builds these; the server dispatches on their type. Every command
has a ``tag`` and a ``name`` (the upper-case command as used by the state table, e.g. ``"UID
FETCH"``). Mailbox names are already decoded to Unicode (modified UTF-7 undone when the client uses
it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class SeqRange:
    """``seq-number`` or ``seq-range`` (RFC 9051 §9); ``None`` stands for ``*``."""

    start: int | None
    end: int | None

    def bounds(self, star: int) -> tuple[int, int]:
        """Low and high end, ``*`` meaning star; "n:m" equals "m:n" (RFC 9051 §9)."""
        a = star if self.start is None else self.start
        b = star if self.end is None else self.end
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class SeqSet:
    """``sequence-set`` (RFC 9051 §9): sequence numbers or UIDs, ``*`` for the largest.

    ``saved`` is the SEARCHRES ``$`` (RFC 5182 §2.1, RFC 9051 §6.4.4.1): the UIDs of the last
    SEARCH with RETURN (SAVE); it has no ranges.
    """

    ranges: tuple[SeqRange, ...]
    saved: bool = False

    def contains(self, n: int, star: int) -> bool:
        """Whether n is in the set, ``*`` meaning star (the largest number in use)."""
        for r in self.ranges:
            lo, hi = r.bounds(star)
            if lo <= n <= hi:
                return True
        return False

    def has_star(self) -> bool:
        return any(r.start is None or r.end is None for r in self.ranges)

    def max_number(self) -> int:
        """Largest explicit number in the set (0 when only ``*``)."""
        return max(
            [0] + [r.start or 0 for r in self.ranges] + [r.end or 0 for r in self.ranges],
        )

    def expand(self, star: int) -> Iterator[int]:
        """All numbers in the set in ascending order, without duplicates."""
        spans = sorted(r.bounds(star) for r in self.ranges)
        last = 0
        for lo, hi in spans:
            yield from range(max(lo, last + 1), hi + 1)
            last = max(last, hi)

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def num(n: int | None) -> str:
            return "*" if n is None else str(n)

        return ",".join(
            num(r.start) if r.start == r.end else f"{num(r.start)}:{num(r.end)}"
            for r in self.ranges
        )


def compact_set(numbers: Iterable[int]) -> str:
    """Render numbers as a compact sequence-set, e.g. ``1:3,7`` (for COPYUID, ESEARCH)."""
    nums = sorted(set(numbers))
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}:{nums[j]}")
        i = j + 1
    return ",".join(parts)


def uid_set_in_order(numbers: list[int]) -> str:
    """Render UIDs in the given order (COPYUID pairs source and destination UIDs positionally)."""
    parts: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}:{numbers[j]}")
        i = j + 1
    return ",".join(parts)


# --- FETCH items (RFC 9051 §6.4.5) ---


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec`` (RFC 9051 §6.4.5): part numbers plus an optional text specifier."""

    part: tuple[int, ...] = ()
    text: Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"] | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        out = ".".join(str(p) for p in self.part)
        if self.text is not None:
            out = f"{out}.{self.text}" if out else self.text
        if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            out += " (" + " ".join(self.fields) + ")"
        return out


SimpleFetchName: TypeAlias = Literal[
    "FLAGS",
    "UID",
    "RFC822.SIZE",
    "INTERNALDATE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "MODSEQ",  # RFC 7162 §3.1.4.1
    "SAVEDATE",  # RFC 8514 §4.2
    "PREVIEW",  # RFC 8970 §3
]


@dataclass(frozen=True, slots=True)
class FetchSimple:
    """A FETCH data item without arguments, e.g. FLAGS or ENVELOPE."""

    name: SimpleFetchName


@dataclass(frozen=True, slots=True)
class FetchBody:
    """``BODY[section]<partial>``, ``BODY.PEEK[...]``, ``BINARY[...]``, ``BINARY.PEEK[...]``."""

    section: Section
    peek: bool = False
    partial: tuple[int, int] | None = None
    binary: bool = False


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """``BINARY.SIZE[part]`` (RFC 9051 §6.4.5)."""

    part: tuple[int, ...]


FetchAttr: TypeAlias = FetchSimple | FetchBody | FetchBinarySize


# --- SEARCH keys (RFC 9051 §6.4.4) ---


@dataclass(frozen=True, slots=True)
class SearchAll:
    """``ALL``."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """Flag keys: ``SEEN``/``UNSEEN``, ``KEYWORD``/``UNKEYWORD``... (set=False: UN- forms)."""

    flag: str
    set: bool = True


@dataclass(frozen=True, slots=True)
class SearchSeq:
    """A ``sequence-set`` key (message sequence numbers)."""

    seqset: SeqSet


@dataclass(frozen=True, slots=True)
class SearchUid:
    """``UID sequence-set``."""

    seqset: SeqSet


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """``HEADER field string``; FROM, TO, CC, BCC and SUBJECT map to this too."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchBody:
    """``BODY string`` (text=False) or ``TEXT string`` (text=True, header and body)."""

    value: str
    text: bool = False


@dataclass(frozen=True, slots=True)
class SearchDate:
    """``BEFORE/ON/SINCE date`` and the ``SENT*`` forms (sent=True uses the Date header)."""

    op: Literal["BEFORE", "ON", "SINCE"]
    date: date
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize:
    """``LARGER n`` / ``SMALLER n``."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchNot:
    """``NOT search-key``."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """``OR search-key search-key``."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised list or the implicit AND of the top level."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """``MODSEQ [entry-name entry-type] mod-sequence-valzer`` (RFC 7162 §3.1.5)."""

    modseq: int


@dataclass(frozen=True, slots=True)
class SearchSaveDate:
    """``SAVEDBEFORE/SAVEDON/SAVEDSINCE date`` (RFC 8514 §4.3)."""

    op: Literal["BEFORE", "ON", "SINCE"]
    date: date


@dataclass(frozen=True, slots=True)
class SearchSaveDateSupported:
    """``SAVEDATESUPPORTED`` (RFC 8514 §4.3): all messages, as every mailbox keeps save dates."""


@dataclass(frozen=True, slots=True)
class SearchWithin:
    """``OLDER n`` / ``YOUNGER n`` in seconds relative to now (RFC 5032 §3)."""

    older: bool
    seconds: int


SearchKey: TypeAlias = (
    "SearchAll | SearchFlag | SearchSeq | SearchUid | SearchHeader | SearchBody | SearchDate | "
    "SearchSize | SearchNot | SearchOr | SearchAnd | SearchModseq | SearchSaveDate | "
    "SearchSaveDateSupported | SearchWithin"
)


# --- Commands ---


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of all commands."""

    NAME: ClassVar[str] = ""
    tag: str

    @property
    def name(self) -> str:
        return self.NAME


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability(Command):
    NAME: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    NAME: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout(Command):
    NAME: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Id(Command):
    """RFC 2971 §3.1; params None means NIL."""

    NAME: ClassVar[str] = "ID"
    params: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls(Command):
    NAME: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Command):
    NAME: ClassVar[str] = "LOGIN"
    username: str
    password: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(Command):
    """RFC 9051 §6.2.2; initial_response per SASL-IR (RFC 4959), b"" for "="."""

    NAME: ClassVar[str] = "AUTHENTICATE"
    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable(Command):
    NAME: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceCmd(Command):
    NAME: ClassVar[str] = "NAMESPACE"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListCmd(Command):
    """LIST incl. the RFC 5258 extended form that IMAP4rev2 includes (RFC 9051 §6.3.9)."""

    NAME: ClassVar[str] = "LIST"
    reference: str
    patterns: tuple[str, ...]
    select_opts: frozenset[str] = frozenset()
    return_opts: frozenset[str] = frozenset()
    status_items: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()  # RFC 9590 RETURN (METADATA (entries))


@dataclass(frozen=True, slots=True, kw_only=True)
class Lsub(Command):
    NAME: ClassVar[str] = "LSUB"
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Create(Command):
    NAME: ClassVar[str] = "CREATE"
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3 CREATE ... (USE (\Attr))


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(Command):
    NAME: ClassVar[str] = "DELETE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(Command):
    NAME: ClassVar[str] = "RENAME"
    old: str
    new: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Command):
    NAME: ClassVar[str] = "SUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(Command):
    NAME: ClassVar[str] = "UNSUBSCRIBE"
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Command):
    NAME: ClassVar[str] = "STATUS"
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """``QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])`` (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None
    seq_match: tuple[SeqSet, SeqSet] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Select(Command):
    """SELECT, or EXAMINE when readonly (RFC 9051 §6.3.2, §6.3.3), with the CONDSTORE and
    QRESYNC select parameters (RFC 7162 §3.1.8, §3.2.5)."""

    NAME: ClassVar[str] = "SELECT"
    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None

    @property
    def name(self) -> str:
        return "EXAMINE" if self.readonly else "SELECT"


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND: flags, date, data; binary for a literal8 (RFC 3516 §4.4)."""

    flags: tuple[str, ...]
    internal_date: datetime | None
    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Append(Command):
    """APPEND; ``more`` holds the further messages of a MULTIAPPEND (RFC 3502 §6.3.11)."""

    NAME: ClassVar[str] = "APPEND"
    mailbox: str
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    message: bytes
    binary: bool = False
    more: tuple[AppendMessage, ...] = ()

    @property
    def messages(self) -> tuple[AppendMessage, ...]:
        first = AppendMessage(self.flags, self.internal_date, self.message, self.binary)
        return (first, *self.more)


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle(Command):
    NAME: ClassVar[str] = "IDLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check(Command):
    NAME: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    NAME: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unselect(Command):
    NAME: ClassVar[str] = "UNSELECT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE with a uid set (RFC 4315 §2.1)."""

    NAME: ClassVar[str] = "EXPUNGE"
    uids: SeqSet | None = None

    @property
    def name(self) -> str:
        return "EXPUNGE" if self.uids is None else "UID EXPUNGE"


@dataclass(frozen=True, slots=True, kw_only=True)
class _UidCommand(Command):
    uid: bool = False

    @property
    def name(self) -> str:
        return f"UID {self.NAME}" if self.uid else self.NAME


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(_UidCommand):
    """FETCH with the modifiers CHANGEDSINCE and VANISHED (RFC 7162 §3.1.4.1, §3.2.6)."""

    NAME: ClassVar[str] = "FETCH"
    seqset: SeqSet
    items: tuple[FetchAttr, ...]
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Store(_UidCommand):
    """STORE with the UNCHANGEDSINCE modifier (RFC 7162 §3.1.3)."""

    NAME: ClassVar[str] = "STORE"
    seqset: SeqSet
    op: Literal["set", "add", "remove"]
    silent: bool = False
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Search(_UidCommand):
    """SEARCH; return_opts None for the classic form, else the RETURN options (RFC 9051 §6.4.4)."""

    NAME: ClassVar[str] = "SEARCH"
    charset: str | None = None
    key: SearchKey = SearchAll()
    return_opts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(_UidCommand):
    NAME: ClassVar[str] = "COPY"
    seqset: SeqSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Move(_UidCommand):
    """MOVE and UID MOVE (RFC 6851 §3, RFC 9051 §6.4.8)."""

    NAME: ClassVar[str] = "MOVE"
    seqset: SeqSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Replace(_UidCommand):
    """REPLACE and UID REPLACE (RFC 8508 §3)."""

    NAME: ClassVar[str] = "REPLACE"
    seqset: SeqSet
    mailbox: str
    message: AppendMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class Sort(_UidCommand):
    """SORT and UID SORT (RFC 5256 §3): criteria as (key, reverse), e.g. ("DATE", True)."""

    NAME: ClassVar[str] = "SORT"
    criteria: tuple[tuple[str, bool], ...]
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread(_UidCommand):
    """THREAD and UID THREAD (RFC 5256 §3): REFERENCES or ORDEREDSUBJECT."""

    NAME: ClassVar[str] = "THREAD"
    algorithm: str
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class ESearch(Command):
    """Multi-mailbox ESEARCH (RFC 7377 §2): IN (filters), RETURN options and search keys."""

    NAME: ClassVar[str] = "ESEARCH"
    # (kind, mailboxes): kind one of selected, selected-delayed, inboxes, personal, subscribed,
    # subtree, subtree-one, mailboxes.
    sources: tuple[tuple[str, tuple[str, ...]], ...] = ()
    return_opts: tuple[str, ...] = ()
    charset: str | None = None
    key: SearchKey = SearchAll()


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuotaRoot(Command):
    NAME: ClassVar[str] = "GETQUOTAROOT"  # RFC 9208 §4.3.2
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuota(Command):
    NAME: ClassVar[str] = "GETQUOTA"  # RFC 9208 §4.3.1
    root: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuota(Command):
    NAME: ClassVar[str] = "SETQUOTA"  # RFC 9208 §4.3.3
    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetMetadata(Command):
    """GETMETADATA (RFC 5464 §4.2) with MAXSIZE and DEPTH options."""

    NAME: ClassVar[str] = "GETMETADATA"
    mailbox: str
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: str = "0"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMetadata(Command):
    """SETMETADATA (RFC 5464 §4.3): value None (NIL) removes the entry."""

    NAME: ClassVar[str] = "SETMETADATA"
    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Compress(Command):
    NAME: ClassVar[str] = "COMPRESS"  # RFC 4978 §3
    mechanism: str


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group of NOTIFY SET (RFC 5465 §6): filter, its mailboxes, and the events
    (empty for NONE)."""

    filter: str
    mailboxes: tuple[str, ...]
    events: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify(Command):
    """NOTIFY NONE (groups empty, none True) or NOTIFY SET [STATUS] groups (RFC 5465 §3)."""

    NAME: ClassVar[str] = "NOTIFY"
    none: bool = False
    status: bool = False
    groups: tuple[NotifyGroup, ...] = ()
