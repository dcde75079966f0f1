"""Parsers of the selected-state commands (RFC 9051 §6.4): FETCH, STORE, SEARCH, COPY, MOVE
(RFC 6851), REPLACE (RFC 8508), SORT and THREAD (RFC 5256), with the CONDSTORE modifiers
(RFC 7162), SEARCHRES (RFC 5182), SAVEDATE (RFC 8514) and WITHIN (RFC 5032) keys."""

from __future__ import annotations

import re
from typing import Final, Literal

from mox.imap import abnf
from mox.imap import commands as c
from mox.imap.cursor import Cursor
from mox.imap.errors import ImapBad

# Nesting bound for search keys (parentheses, NOT, OR) so input cannot exhaust the stack.
MAX_SEARCH_DEPTH: Final = 64

_FETCH_NAME_RE: Final = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_PART_RE: Final = re.compile(rb"[1-9][0-9]*(?:\.[1-9][0-9]*)*")
_SECTION_TEXT_RE: Final = re.compile(rb"[A-Za-z.]+")
_PARTIAL_RE: Final = re.compile(rb"<([0-9]+)\.([0-9]+)>")

# search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE" (RFC 9051 §6.4.4, SAVE is
# SEARCHRES, RFC 5182 §2.1)
SEARCH_RETURN_OPTS: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
# sort-key = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO" (RFC 5256 §5),
# plus DISPLAY (RFC 5957 §3, as Dovecot and Cyrus offer it).
SORT_KEYS: Final = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAY"})
THREAD_ALGORITHMS: Final = frozenset({"REFERENCES", "ORDEREDSUBJECT"})


# fetch-att macros (RFC 9051 §6.4.5)
_MACROS: Final[dict[str, tuple[c.FetchAttr, ...]]] = {
    "ALL": (
        c.FetchSimple("FLAGS"),
        c.FetchSimple("INTERNALDATE"),
        c.FetchSimple("RFC822.SIZE"),
        c.FetchSimple("ENVELOPE"),
    ),
    "FAST": (c.FetchSimple("FLAGS"), c.FetchSimple("INTERNALDATE"), c.FetchSimple("RFC822.SIZE")),
    "FULL": (
        c.FetchSimple("FLAGS"),
        c.FetchSimple("INTERNALDATE"),
        c.FetchSimple("RFC822.SIZE"),
        c.FetchSimple("ENVELOPE"),
        c.FetchSimple("BODY"),
    ),
}
_SIMPLE_FETCH: Final[dict[str, c.SimpleFetchName]] = {
    "FLAGS": "FLAGS",
    "UID": "UID",
    "RFC822.SIZE": "RFC822.SIZE",
    "INTERNALDATE": "INTERNALDATE",
    "ENVELOPE": "ENVELOPE",
    "BODYSTRUCTURE": "BODYSTRUCTURE",
    "BODY": "BODY",
    "RFC822": "RFC822",
    "RFC822.HEADER": "RFC822.HEADER",
    "RFC822.TEXT": "RFC822.TEXT",
    "MODSEQ": "MODSEQ",
    "SAVEDATE": "SAVEDATE",
    "PREVIEW": "PREVIEW",
}


def _section(cur: Cursor) -> c.Section:
    # section = "[" [section-spec] "]"
    # section-spec = section-msgtext / (section-part ["." section-text])
    # section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    # section-text = section-msgtext / "MIME" (RFC 9051 §9)
    cur.expect(b"[")
    if cur.take(b"]"):
        return c.Section()
    part: tuple[int, ...] = ()
    m = cur.match(_SECTION_PART_RE)
    if m is not None:
        part = tuple(int(p) for p in m.group().split(b"."))
        if any(p > abnf.MAX_NUMBER for p in part):
            raise ImapBad("section part number too large")
        if cur.take(b"]"):
            return c.Section(part=part)
        cur.expect(b".")
    tm = cur.match(_SECTION_TEXT_RE)
    text = tm.group().decode("ascii").upper() if tm else ""
    fields: tuple[str, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        cur.sp()
        cur.expect(b"(", "header list")
        names: list[str] = []
        while True:
            names.append(cur.text(cur.astring("header field name"), "header field name"))
            if cur.take(b")"):
                break
            cur.sp()
        fields = tuple(names)
    elif text == "MIME":
        if not part:
            raise ImapBad("MIME needs a part number")  # RFC 9051 §6.4.5
    elif text not in ("HEADER", "TEXT"):
        raise ImapBad(f"invalid section {text!r}")
    cur.expect(b"]")
    return c.Section(part=part, text=text, fields=fields)  # type: ignore[arg-type]


def _partial(cur: Cursor) -> tuple[int, int] | None:
    # partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9)
    if cur.peek() != b"<":
        return None
    m = cur.match(_PARTIAL_RE)
    if m is None:
        raise ImapBad("invalid partial range")
    start, length = int(m.group(1)), int(m.group(2))
    if length == 0 or start > abnf.MAX_NUMBER64 or length > abnf.MAX_NUMBER64:
        raise ImapBad("invalid partial range")
    return start, length


def _fetch_att(cur: Cursor) -> c.FetchAttr:
    m = cur.match(_FETCH_NAME_RE)
    if m is None:
        raise ImapBad(f"expected fetch attribute{cur.where()}")
    name = m.group().decode("ascii").upper()
    if name in ("BODY", "BODY.PEEK") and cur.peek() == b"[":
        section = _section(cur)
        return c.FetchBody(section, peek=name == "BODY.PEEK", partial=_partial(cur))
    if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
        # section-binary = "[" [section-part] "]" (RFC 9051 §9)
        section = _section(cur)
        if section.text is not None:
            raise ImapBad("BINARY takes only part numbers")
        if name == "BINARY.SIZE":
            return c.FetchBinarySize(section.part)
        return c.FetchBody(section, peek=name == "BINARY.PEEK", partial=_partial(cur), binary=True)
    simple = _SIMPLE_FETCH.get(name)
    if simple is None:
        raise ImapBad(f"unknown fetch attribute {name}")
    # RFC 8970 §3: PREVIEW (LAZY); we always have a preview, so LAZY changes nothing.
    if simple == "PREVIEW" and cur.take(b" (") and not cur.take(b")"):
        while True:
            if cur.keyword() != "LAZY":
                raise ImapBad("unknown PREVIEW modifier")
            if cur.take(b")"):
                break
            cur.sp()
    return c.FetchSimple(simple)


def _modseq_value(cur: Cursor, *, zero: bool = True) -> int:
    # mod-sequence-value = 1*DIGIT (63-bit); mod-sequence-valzer allows 0 (RFC 7162 §7)
    n = cur.number(big=True)
    if n == 0 and not zero:
        raise ImapBad("mod-sequence must not be zero")
    return n


def fetch(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    #         "(" fetch-att *(SP fetch-att) ")") (RFC 9051 §6.4.5)
    cur.sp()
    seqset = cur.seqset()
    cur.sp()
    items: list[c.FetchAttr] = []
    if cur.take(b"("):
        while True:
            items.append(_fetch_att(cur))
            if cur.take(b")"):
                break
            cur.sp()
    else:
        save = cur.pos
        m = cur.match(_FETCH_NAME_RE)
        macro = _MACROS.get(m.group().decode("ascii").upper()) if m else None
        if macro is not None and cur.peek() != b"[":
            items.extend(macro)
        else:
            cur.pos = save
            items.append(_fetch_att(cur))
    changed_since: int | None = None
    vanished = False
    if cur.take(b" ("):
        # fetch-modifiers: CHANGEDSINCE (RFC 7162 §3.1.4.1) and VANISHED (§3.2.6)
        while True:
            mod = cur.keyword()
            if mod == "CHANGEDSINCE":
                cur.sp()
                changed_since = _modseq_value(cur, zero=True)
            elif mod == "VANISHED":
                vanished = True
            else:
                raise ImapBad(f"unknown fetch modifier {mod}")
            if cur.take(b")"):
                break
            cur.sp()
        # RFC 7162 §3.2.6: VANISHED only in UID FETCH and together with CHANGEDSINCE.
        if vanished and (not uid or changed_since is None):
            raise ImapBad("VANISHED requires UID FETCH with CHANGEDSINCE")
    return c.Fetch(
        tag=tag,
        uid=uid,
        seqset=seqset,
        items=tuple(dict.fromkeys(items)),
        changed_since=changed_since,
        vanished=vanished,
    )


def store(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # store = "STORE" SP sequence-set SP store-att-flags
    # store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    # (RFC 9051 §6.4.6)
    cur.sp()
    seqset = cur.seqset()
    cur.sp()
    unchanged_since: int | None = None
    if cur.take(b"("):
        # store-modifier: UNCHANGEDSINCE mod-sequence-valzer (RFC 7162 §3.1.3)
        cur.expect(b"UNCHANGEDSINCE ", "UNCHANGEDSINCE")
        unchanged_since = _modseq_value(cur, zero=True)
        cur.expect(b")")
        cur.sp()
    op: Literal["set", "add", "remove"] = "set"
    if cur.take(b"+"):
        op = "add"
    elif cur.take(b"-"):
        op = "remove"
    cur.expect(b"FLAGS", "FLAGS")
    silent = cur.take(b".SILENT")
    cur.sp()
    if cur.peek() == b"(":
        flags = cur.flag_list()
    else:
        found = [cur.flag(storable=True)]
        while cur.take(b" "):
            found.append(cur.flag(storable=True))
        flags = tuple(dict.fromkeys(found))
    return c.Store(
        tag=tag,
        uid=uid,
        seqset=seqset,
        op=op,
        silent=silent,
        flags=flags,
        unchanged_since=unchanged_since,
    )


def copy(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # copy = "COPY" SP sequence-set SP mailbox (RFC 9051 §6.4.7)
    cur.sp()
    seqset = cur.seqset()
    cur.sp()
    return c.Copy(tag=tag, uid=uid, seqset=seqset, mailbox=cur.mailbox())


def move(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # move = "MOVE" SP sequence-set SP mailbox (RFC 9051 §6.4.8, RFC 6851 §4)
    cur.sp()
    seqset = cur.seqset()
    cur.sp()
    return c.Move(tag=tag, uid=uid, seqset=seqset, mailbox=cur.mailbox())


def replace(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # replace = "REPLACE" SP seq-number SP mailbox append-message (RFC 8508 §6)
    from mox.imap.parser_ext import append_message  # parser_ext imports this module

    cur.sp()
    seqset = cur.seqset()
    if seqset.saved or len(seqset.ranges) != 1 or seqset.ranges[0].start != seqset.ranges[0].end:
        raise ImapBad("REPLACE takes one message number")
    cur.sp()
    mailbox = cur.mailbox()
    return c.Replace(tag=tag, uid=uid, seqset=seqset, mailbox=mailbox, message=append_message(cur))


def uid_expunge(cur: Cursor, tag: str) -> c.Command:
    # uid-expunge = "EXPUNGE" SP sequence-set (RFC 9051 §6.4.9, RFC 4315 §2.1)
    cur.sp()
    return c.Expunge(tag=tag, uids=cur.seqset())


class _SearchParser:
    """search-key grammar (RFC 9051 §6.4.4 and §9, plus NEW/OLD/RECENT from RFC 3501 §6.4.4)."""

    def __init__(self, cur: Cursor, charset: str | None) -> None:
        self.cur = cur
        self.charset = charset

    def string(self) -> str:
        data = self.cur.astring("search string")
        charset = (self.charset or "UTF-8").upper()
        encoding = "ascii" if charset == "US-ASCII" else "utf-8"
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            raise ImapBad(f"search string is not valid {charset}") from e

    def key(self, depth: int = 0) -> c.SearchKey:
        cur = self.cur
        if depth > MAX_SEARCH_DEPTH:
            raise ImapBad("search expression nested too deeply")
        if cur.take(b"("):
            keys = [self.key(depth + 1)]
            while not cur.take(b")"):
                cur.sp()
                keys.append(self.key(depth + 1))
            return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))
        if cur.peek() in (b"*", b"$") or cur.peek().isdigit():
            return c.SearchSeq(cur.seqset())
        word = cur.keyword()
        simple = _SEARCH_FLAGS.get(word)
        if simple is not None:
            return simple
        if word in ("KEYWORD", "UNKEYWORD"):
            cur.sp()
            return c.SearchFlag(cur.atom("keyword").lower(), set=word == "KEYWORD")
        if word in _SEARCH_HEADERS:
            cur.sp()
            return c.SearchHeader(_SEARCH_HEADERS[word], self.string())
        if word == "HEADER":
            cur.sp()
            field = cur.text(cur.astring("header field name"), "header field name")
            cur.sp()
            return c.SearchHeader(field, self.string())
        if word in ("BODY", "TEXT"):
            cur.sp()
            return c.SearchBody(self.string(), text=word == "TEXT")
        if word in _SEARCH_DATES:
            op, sent = _SEARCH_DATES[word]
            cur.sp()
            return c.SearchDate(op, cur.date(), sent=sent)  # type: ignore[arg-type]
        if word in ("LARGER", "SMALLER"):
            cur.sp()
            return c.SearchSize(word == "LARGER", cur.number(big=True))
        if word == "UID":
            cur.sp()
            return c.SearchUid(cur.seqset())
        if word == "MODSEQ":
            cur.sp()
            if cur.peek() == b'"':
                # [SP entry-name SP entry-type-req] (RFC 7162 §3.1.5): accepted, not used.
                cur.quoted()
                cur.sp()
                if cur.keyword() not in ("PRIV", "SHARED", "ALL"):
                    raise ImapBad("invalid MODSEQ entry type")
                cur.sp()
            return c.SearchModseq(_modseq_value(cur, zero=True))
        if word in ("SAVEDBEFORE", "SAVEDON", "SAVEDSINCE"):
            cur.sp()
            return c.SearchSaveDate(word[5:], cur.date())  # type: ignore[arg-type]
        if word == "SAVEDATESUPPORTED":
            return c.SearchSaveDateSupported()
        if word in ("OLDER", "YOUNGER"):
            cur.sp()
            return c.SearchWithin(word == "OLDER", cur.number(nonzero=True))
        if word == "NOT":
            cur.sp()
            return c.SearchNot(self.key(depth + 1))
        if word == "OR":
            cur.sp()
            left = self.key(depth + 1)
            cur.sp()
            return c.SearchOr(left, self.key(depth + 1))
        raise ImapBad(f"unknown search key {word}")


_RECENT = c.SearchFlag("\\Recent")
_SEARCH_FLAGS: Final[dict[str, c.SearchKey]] = {
    "ALL": c.SearchAll(),
    "ANSWERED": c.SearchFlag("\\Answered"),
    "DELETED": c.SearchFlag("\\Deleted"),
    "DRAFT": c.SearchFlag("\\Draft"),
    "FLAGGED": c.SearchFlag("\\Flagged"),
    "SEEN": c.SearchFlag("\\Seen"),
    "UNANSWERED": c.SearchFlag("\\Answered", set=False),
    "UNDELETED": c.SearchFlag("\\Deleted", set=False),
    "UNDRAFT": c.SearchFlag("\\Draft", set=False),
    "UNFLAGGED": c.SearchFlag("\\Flagged", set=False),
    "UNSEEN": c.SearchFlag("\\Seen", set=False),
    # RFC 3501 §6.4.4; \Recent is never set here (RFC 9051 removed it), so these are constant.
    "RECENT": _RECENT,
    "NEW": c.SearchAnd((_RECENT, c.SearchFlag("\\Seen", set=False))),
    "OLD": c.SearchNot(_RECENT),
}
_SEARCH_HEADERS: Final = {
    "FROM": "From",
    "TO": "To",
    "CC": "Cc",
    "BCC": "Bcc",
    "SUBJECT": "Subject",
}
_SEARCH_DATES: Final[dict[str, tuple[str, bool]]] = {
    "BEFORE": ("BEFORE", False),
    "ON": ("ON", False),
    "SINCE": ("SINCE", False),
    "SENTBEFORE": ("BEFORE", True),
    "SENTON": ("ON", True),
    "SENTSINCE": ("SINCE", True),
}


def return_options(cur: Cursor) -> tuple[str, ...]:
    """``"(" [search-return-opt *(SP search-return-opt)] ")"`` (RFC 9051 §6.4.4)."""
    cur.expect(b"(")
    opts: list[str] = []
    if not cur.take(b")"):
        while True:
            opt = cur.keyword()
            if opt not in SEARCH_RETURN_OPTS:
                raise ImapBad(f"unknown search return option {opt}")
            opts.append(opt)
            if cur.take(b")"):
                break
            cur.sp()
    return tuple(dict.fromkeys(opts))


def search_keys(cur: Cursor, charset: str | None) -> c.SearchKey:
    """``search-key *(SP search-key)``, the implicit AND."""
    sp = _SearchParser(cur, charset)
    keys = [sp.key()]
    while cur.take(b" "):
        keys.append(sp.key())
    return keys[0] if len(keys) == 1 else c.SearchAnd(tuple(keys))


def search(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # search = "SEARCH" [search-return-opts] SP search-program
    # search-program = ["CHARSET" SP charset SP] search-key *(SP search-key) (RFC 9051 §6.4.4)
    cur.sp()
    return_opts: tuple[str, ...] | None = None
    if cur.take(b"RETURN "):
        return_opts = return_options(cur)
        cur.sp()
    charset: str | None = None
    if cur.take(b"CHARSET "):
        charset = cur.text(cur.astring("charset"), "charset").upper()
        cur.sp()
    key = search_keys(cur, charset)
    return c.Search(tag=tag, uid=uid, charset=charset, key=key, return_opts=return_opts)


def sort(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
    # sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
    # sort-criterion = ["REVERSE" SP] sort-key; search-criteria = charset 1*(SP search-key)
    # (RFC 5256 §5)
    cur.sp()
    cur.expect(b"(", "sort criteria")
    criteria: list[tuple[str, bool]] = []
    while True:
        word = cur.keyword()
        reverse = word == "REVERSE"
        if reverse:
            cur.sp()
            word = cur.keyword()
        if word not in SORT_KEYS:
            raise ImapBad(f"unknown sort key {word}")
        criteria.append((word, reverse))
        if cur.take(b")"):
            break
        cur.sp()
    cur.sp()
    charset = cur.text(cur.astring("charset"), "charset").upper()
    cur.sp()
    key = search_keys(cur, charset)
    return c.Sort(tag=tag, uid=uid, criteria=tuple(criteria), charset=charset, key=key)


def thread(cur: Cursor, tag: str, uid: bool) -> c.Command:
    # thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256 §5)
    cur.sp()
    algorithm = cur.keyword()
    if algorithm not in THREAD_ALGORITHMS:
        raise ImapBad(f"unknown thread algorithm {algorithm}")
    cur.sp()
    charset = cur.text(cur.astring("charset"), "charset").upper()
    cur.sp()
    key = search_keys(cur, charset)
    return c.Thread(tag=tag, uid=uid, algorithm=algorithm, charset=charset, key=key)
