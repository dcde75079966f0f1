"""Parsers of extension commands and parameters of the authenticated state: APPEND messages
(MULTIAPPEND RFC 3502, BINARY RFC 3516, UTF8 RFC 6855), SELECT parameters (CONDSTORE/QRESYNC,
RFC 7162), CREATE USE (RFC 6154), QUOTA (RFC 9208), METADATA (RFC 5464), COMPRESS (RFC 4978),
multi-mailbox ESEARCH (RFC 7377) and NOTIFY (RFC 5465).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from mox.imap import commands as c
from mox.imap.cursor import Cursor, parse_date_time
from mox.imap.errors import ImapBad
from mox.imap.parser_selected import return_options, search_keys
from mox.imap.responses import ResponseCode

# RFC 6154 §2 use-attr
SPECIAL_USE: Final = {
    a.lower(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
# filter-mailboxes (RFC 5465 §8, RFC 7377 §2); the ones that take mailbox names.
MAILBOX_FILTERS: Final = frozenset(
    {"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED"}
)
MAILBOX_FILTERS_WITH_NAMES: Final = frozenset({"SUBTREE", "SUBTREE-ONE", "MAILBOXES"})
# RFC 5465 §5: events
NOTIFY_EVENTS: Final = {
    e.upper(): e
    for e in (
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    )
}


def append_message(cur: Cursor) -> c.AppendMessage:
    """``SP append-message`` where append-message = append-opts SP append-data
    (RFC 3502 §6.3.11, RFC 9051 §9); append-data = literal / literal8 / "UTF8" SP "(" literal8 ")"
    (RFC 3516 §4.4, RFC 6855 §4)."""
    cur.sp()
    flags: tuple[str, ...] = ()
    when: datetime | None = None
    if cur.peek() == b"(":
        flags = cur.flag_list()
        cur.sp()
    if cur.peek() == b'"':
        when = parse_date_time(cur.quoted())
        cur.sp()
    if cur.take(b"UTF8 ("):
        cur.take(b"~")
        if not cur.at_literal():
            raise ImapBad("UTF8 needs the message as a literal")
        data = cur.literal()
        cur.expect(b")")
        return c.AppendMessage(flags, when, data)
    binary = cur.take(b"~")
    if not cur.at_literal():
        raise ImapBad("APPEND needs the message as a literal")
    return c.AppendMessage(flags, when, cur.literal(), binary)


def append(cur: Cursor, tag: str) -> c.Command:
    # append = "APPEND" SP mailbox 1*append-message (RFC 3502 §6.3.11)
    cur.sp()
    mailbox = cur.mailbox()
    messages = [append_message(cur)]
    while not cur.at_end():
        messages.append(append_message(cur))
    first = messages[0]
    return c.Append(
        tag=tag,
        mailbox=mailbox,
        flags=first.flags,
        internal_date=first.internal_date,
        message=first.data,
        binary=first.binary,
        more=tuple(messages[1:]),
    )


def _qresync(cur: Cursor) -> c.QresyncParams:
    # qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    #                 [SP seq-match-data] ")"
    # seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 §7)
    cur.expect(b"(")
    uidvalidity = cur.number(nonzero=True)
    cur.sp()
    modseq = cur.number(big=True)
    known: c.SeqSet | None = None
    match: tuple[c.SeqSet, c.SeqSet] | None = None
    if cur.take(b" "):
        if cur.peek() != b"(":
            known = cur.seqset()
            if not cur.take(b" "):
                cur.expect(b")")
                return c.QresyncParams(uidvalidity, modseq, known, None)
        cur.expect(b"(")
        seqs = cur.seqset()
        cur.sp()
        uids = cur.seqset()
        cur.expect(b")")
        match = (seqs, uids)
    cur.expect(b")")
    return c.QresyncParams(uidvalidity, modseq, known, match)


def select(readonly: bool) -> Callable[[Cursor, str], c.Command]:
    def parse(cur: Cursor, tag: str) -> c.Command:
        # select = "SELECT" SP mailbox [select-params]; select-params = SP "(" select-param
        # *(SP select-param) ")" (RFC 9051 §6.3.2); CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5)
        cur.sp()
        mailbox = cur.mailbox()
        condstore = False
        qresync: c.QresyncParams | None = None
        if cur.take(b" ("):
            while True:
                param = cur.keyword()
                if param == "CONDSTORE":
                    condstore = True
                elif param == "QRESYNC":
                    cur.sp()
                    qresync = _qresync(cur)
                else:
                    raise ImapBad(f"unknown select parameter {param}")
                if cur.take(b")"):
                    break
                cur.sp()
        return c.Select(
            tag=tag, mailbox=mailbox, readonly=readonly, condstore=condstore, qresync=qresync
        )

    return parse


def create(cur: Cursor, tag: str) -> c.Command:
    # create = "CREATE" SP mailbox [create-params]; create-param =/ "USE" SP "(" [use-attr
    # *(SP use-attr)] ")" (RFC 9051 §6.3.4, RFC 6154 §6)
    cur.sp()
    mailbox = cur.mailbox()
    uses: list[str] = []
    if cur.take(b" ("):
        cur.expect(b"USE (", "USE")
        if not cur.take(b")"):
            while True:
                cur.expect(b"\\", "special-use attribute")
                attr = SPECIAL_USE.get("\\" + cur.atom().lower())
                if attr is None:
                    raise ImapBad("unknown special-use attribute", ResponseCode("USEATTR"))
                uses.append(attr)
                if cur.take(b")"):
                    break
                cur.sp()
        cur.expect(b")")
    return c.Create(tag=tag, mailbox=mailbox, special_use=tuple(uses))


def getquotaroot(cur: Cursor, tag: str) -> c.Command:
    cur.sp()  # getquotaroot = "GETQUOTAROOT" SP mailbox (RFC 9208 §7)
    return c.GetQuotaRoot(tag=tag, mailbox=cur.mailbox())


def getquota(cur: Cursor, tag: str) -> c.Command:
    cur.sp()  # getquota = "GETQUOTA" SP quota-root-name (RFC 9208 §7)
    return c.GetQuota(tag=tag, root=cur.text(cur.astring("quota root"), "quota root"))


def setquota(cur: Cursor, tag: str) -> c.Command:
    # setquota = "SETQUOTA" SP quota-root-name SP setquota-list (RFC 9208 §7)
    cur.sp()
    root = cur.text(cur.astring("quota root"), "quota root")
    cur.sp()
    cur.expect(b"(")
    limits: list[tuple[str, int]] = []
    if not cur.take(b")"):
        while True:
            name = cur.keyword()
            cur.sp()
            limits.append((name, cur.number(big=True)))
            if cur.take(b")"):
                break
            cur.sp()
    return c.SetQuota(tag=tag, root=root, limits=tuple(limits))


def _entry(cur: Cursor, *, prefix: bool = False) -> str:
    # entry = astring; slash-separated, starting with /private or /shared (RFC 5464 §3.2); as a
    # GETMETADATA prefix with DEPTH, "/private" or "/shared" alone too.
    name = cur.text(cur.astring("metadata entry"), "metadata entry")
    lower = name.lower()
    if prefix and lower in ("/private", "/shared"):
        return lower
    if not lower.startswith(("/private/", "/shared/")) or (
        name.endswith("/") or "//" in name or "*" in name or "%" in name
    ):
        raise ImapBad(f"invalid metadata entry name {name!r}")
    return lower


def getmetadata(cur: Cursor, tag: str) -> c.Command:
    # getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
    # getmetadata-option = "MAXSIZE" SP number / "DEPTH" SP ("0" / "1" / "infinity")
    # entries = entry / "(" entry *(SP entry) ")" (RFC 5464 §5)
    cur.sp()
    maxsize: int | None = None
    depth = "0"
    if cur.take(b"("):
        while True:
            opt = cur.keyword()
            cur.sp()
            if opt == "MAXSIZE":
                maxsize = cur.number()
            elif opt == "DEPTH":
                depth = cur.atom().lower()
                if depth not in ("0", "1", "infinity"):
                    raise ImapBad("invalid DEPTH")
            else:
                raise ImapBad(f"unknown GETMETADATA option {opt}")
            if cur.take(b")"):
                break
            cur.sp()
        cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    entries: list[str] = []
    if cur.take(b"("):
        while True:
            entries.append(_entry(cur, prefix=True))
            if cur.take(b")"):
                break
            cur.sp()
    else:
        entries.append(_entry(cur, prefix=True))
    return c.GetMetadata(
        tag=tag, mailbox=mailbox, entries=tuple(entries), maxsize=maxsize, depth=depth
    )


def setmetadata(cur: Cursor, tag: str) -> c.Command:
    # setmetadata = "SETMETADATA" SP mailbox SP list-of-entry-values
    # list-of-entry-values = "(" entry-value *(SP entry-value) ")"; entry-value = entry SP value
    # value = nstring / literal8 (RFC 5464 §5)
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    cur.expect(b"(")
    entries: list[tuple[str, bytes | None]] = []
    while True:
        name = _entry(cur)
        cur.sp()
        if cur.take(b"~"):
            value: bytes | None = cur.literal()
        else:
            value = cur.nstring()
        entries.append((name, value))
        if cur.take(b")"):
            break
        cur.sp()
    return c.SetMetadata(tag=tag, mailbox=mailbox, entries=tuple(entries))


def compress(cur: Cursor, tag: str) -> c.Command:
    cur.sp()  # compress = "COMPRESS" SP algorithm (RFC 4978 §5)
    return c.Compress(tag=tag, mechanism=cur.keyword())


def _mailbox_list(cur: Cursor) -> tuple[str, ...]:
    # one-or-more-mailbox = mailbox / many-mailboxes (RFC 5465 §8)
    if cur.take(b"("):
        names = [cur.mailbox()]
        while cur.take(b" "):
            names.append(cur.mailbox())
        cur.expect(b")")
        return tuple(names)
    return (cur.mailbox(),)


def _filter(cur: Cursor) -> tuple[str, tuple[str, ...]]:
    kind = cur.keyword()
    if kind in MAILBOX_FILTERS:
        return kind, ()
    if kind in MAILBOX_FILTERS_WITH_NAMES:
        cur.sp()
        return kind, _mailbox_list(cur)
    raise ImapBad(f"unknown mailbox filter {kind}")


def esearch(cur: Cursor, tag: str) -> c.Command:
    # esearch = "ESEARCH" [SP in-option] [SP search-return-opts] SP search-program
    # in-option = "IN" SP "(" source-mbox ")"; source-mbox = filter-mailboxes
    # *(SP filter-mailboxes) (RFC 7377 §6)
    cur.sp()
    sources: list[tuple[str, tuple[str, ...]]] = []
    if cur.take(b"IN ("):
        while True:
            sources.append(_filter(cur))
            if cur.take(b")"):
                break
            cur.sp()
        cur.sp()
    opts: tuple[str, ...] = ()
    if cur.take(b"RETURN "):
        opts = return_options(cur)
        if "SAVE" in opts:
            raise ImapBad("SAVE is not allowed in multi-mailbox ESEARCH")  # RFC 7377 §2
        cur.sp()
    charset: str | None = None
    if cur.take(b"CHARSET "):
        charset = cur.text(cur.astring("charset"), "charset").upper()
        cur.sp()
    key = search_keys(cur, charset)
    return c.ESearch(
        tag=tag,
        # RFC 7377 §2: without IN, the selected mailbox is searched.
        sources=tuple(sources) or (("SELECTED", ()),),
        return_opts=opts,
        charset=charset,
        key=key,
    )


def notify(cur: Cursor, tag: str) -> c.Command:
    # notify = "NOTIFY" SP (notify-set / notify-none); notify-set = "SET" [status-indicator] SP
    # event-groups; event-group = "(" filter-mailboxes SP events ")"; events = "(" event
    # *(SP event) ")" / "NONE" (RFC 5465 §8)
    cur.sp()
    if cur.take(b"NONE"):
        return c.Notify(tag=tag, none=True)
    cur.expect(b"SET", "SET or NONE")
    status = cur.take(b" STATUS")
    groups: list[c.NotifyGroup] = []
    while cur.take(b" "):
        cur.expect(b"(")
        kind, names = _filter(cur)
        cur.sp()
        events: list[str] = []
        if not cur.take(b"NONE"):
            # Lenient: the examples of RFC 5465 §3.1 list the events without parentheses.
            paren = cur.take(b"(")
            while True:
                word = cur.keyword()
                event = NOTIFY_EVENTS.get(word)
                if event is None:
                    # RFC 5465 §3.1: unknown event -> BAD [BADEVENT]
                    raise ImapBad(f"unknown event {word}", ResponseCode("BADEVENT"))
                if event == "MessageNew" and cur.take(b" ("):
                    depth = 1
                    while depth:  # the fetch attributes for new messages; we send UID only
                        ch = cur.peek()
                        if not ch:
                            raise ImapBad("unterminated MessageNew fetch attributes")
                        depth += {b"(": 1, b")": -1}.get(ch, 0)
                        cur.pos += 1
                events.append(event)
                if (paren and cur.take(b")")) or (not paren and cur.peek() == b")"):
                    break
                cur.sp()
        cur.expect(b")")
        groups.append(c.NotifyGroup(kind, names, tuple(events)))
    if not groups:
        raise ImapBad("NOTIFY SET needs at least one event group")
    return c.Notify(tag=tag, status=status, groups=tuple(groups))
