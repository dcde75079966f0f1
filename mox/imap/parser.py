"""IMAP command parser: ``RawCommand`` (from the receiver) to a typed ``Command``, RFC 9051 §6
and §9.

One parse function per command, dispatched through the explicit ``PARSERS`` / ``UID_PARSERS``
tables; the selected-state commands live in ``mox.imap.parser_selected``, token reading in
``mox.imap.cursor``. Any syntax error raises ``ImapBad`` with a message for the client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from mox.imap import abnf
from mox.imap import commands as c
from mox.imap import parser_ext as ext
from mox.imap.cursor import Cursor
from mox.imap.errors import ImapBad
from mox.imap.parser_selected import (
    copy,
    fetch,
    move,
    replace,
    search,
    sort,
    store,
    thread,
    uid_expunge,
)
from mox.imap.receiver import RawCommand

_AUTH_RESPONSE_RE: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

# status-att = "MESSAGES" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"
# (RFC 9051 §6.3.11)
# plus RECENT from RFC 3501 §6.3.10.
# plus HIGHESTMODSEQ (RFC 7162 §3.1.6), APPENDLIMIT (RFC 7889 §3), DELETED-STORAGE (RFC 9208 §4.4).
STATUS_ITEMS: Final = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
        "DELETED-STORAGE",
    }
)
# list-select-opt (RFC 9051 §6.3.9, RFC 5258 §3.1, RFC 6154 §5.3)
LIST_SELECT_OPTS: Final = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_SELECT_BASE: Final = frozenset({"SUBSCRIBED", "SPECIAL-USE"})
# return-option (RFC 9051 §6.3.9, RFC 5258 §3.2, RFC 5819, RFC 6154 §5.1)
# and METADATA (RFC 9590 §3)
LIST_RETURN_OPTS: Final = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS", "METADATA"})


def parse_tag(raw: RawCommand) -> str | None:
    """The tag of a raw command, None when it has none (then answer with an untagged BAD)."""
    m = abnf.TAG_RE.match(raw.chunks[0])
    if m is None:
        return None
    rest = raw.chunks[0][m.end() :]
    if rest and not rest.startswith(b" "):
        return None
    return m.group().decode("ascii")


def parse_command(raw: RawCommand, *, utf8: bool = False) -> c.Command:
    """Parse one command; ImapBad on any syntax error."""
    tag = parse_tag(raw)
    if tag is None:
        raise ImapBad("missing or invalid tag")
    cur = Cursor(raw, utf8=utf8)
    cur.pos = len(tag)
    cur.sp()
    name = cur.keyword()
    if name == "UID":
        cur.sp()
        sub = cur.keyword()
        uid_parser = UID_PARSERS.get(sub)
        if uid_parser is None:
            raise ImapBad(f"unknown UID command {sub}")
        cmd = uid_parser(cur, tag)
    else:
        parser = PARSERS.get(name)
        if parser is None:
            raise ImapBad(f"unknown command {name}")
        cmd = parser(cur, tag)
    cur.end()
    return cmd


# --- per-command parsers: each is given the cursor right after the command name ---


def _no_args(cls: type[c.Command]) -> Callable[[Cursor, str], c.Command]:
    def parse(cur: Cursor, tag: str) -> c.Command:
        return cls(tag=tag)

    return parse


def _id(cur: Cursor, tag: str) -> c.Command:
    # id = "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil (RFC 2971 §4)
    cur.sp()
    if cur.take(b"NIL"):
        return c.Id(tag=tag, params=None)
    cur.expect(b"(")
    params: list[tuple[str, str | None]] = []
    if not cur.take(b")"):
        while True:
            key = cur.text(cur.string(), "ID key")
            cur.sp()
            value = cur.nstring()
            params.append((key, None if value is None else value.decode("utf-8", "replace")))
            if cur.take(b")"):
                break
            cur.sp()
    if len(params) > 30:
        raise ImapBad("too many ID parameters")  # RFC 2971 §3.3: at most 30 pairs
    return c.Id(tag=tag, params=tuple(params))


def _login(cur: Cursor, tag: str) -> c.Command:
    # login = "LOGIN" SP userid SP password (RFC 9051 §6.2.3)
    cur.sp()
    user = cur.text(cur.astring("user name"), "user name")
    cur.sp()
    password = cur.text(cur.astring("password"), "password")
    return c.Login(tag=tag, username=user, password=password)


def _authenticate(cur: Cursor, tag: str) -> c.Command:
    # authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]; initial-resp = (base64 / "=")
    # (RFC 9051 §6.2.2, SASL-IR RFC 4959 §7)
    cur.sp()
    mech = cur.keyword()
    initial: bytes | None = None
    if cur.take(b" "):
        if cur.take(b"="):
            initial = b""
        else:
            m = cur.match(_AUTH_RESPONSE_RE)
            if m is None or not m.group():
                raise ImapBad("invalid initial response")
            initial = m.group()
    return c.Authenticate(tag=tag, mechanism=mech, initial_response=initial)


def _enable(cur: Cursor, tag: str) -> c.Command:
    # enable = "ENABLE" 1*(SP capability) (RFC 9051 §6.3.1)
    caps: list[str] = []
    while cur.take(b" "):
        caps.append(cur.keyword())
    if not caps:
        raise ImapBad("ENABLE needs at least one capability")
    return c.Enable(tag=tag, capabilities=tuple(caps))


def _one_mailbox(
    cls: type[c.Delete | c.Subscribe | c.Unsubscribe],
) -> Callable[[Cursor, str], c.Command]:
    def parse(cur: Cursor, tag: str) -> c.Command:
        cur.sp()
        return cls(tag=tag, mailbox=cur.mailbox())

    return parse


def _rename(cur: Cursor, tag: str) -> c.Command:
    cur.sp()
    old = cur.mailbox()
    cur.sp()
    return c.Rename(tag=tag, old=old, new=cur.mailbox())


def _status_items(cur: Cursor) -> tuple[str, ...]:
    cur.expect(b"(")
    items: list[str] = []
    while True:
        item = cur.keyword()
        if item not in STATUS_ITEMS:
            raise ImapBad(f"unknown status item {item}")
        items.append(item)
        if cur.take(b")"):
            break
        cur.sp()
    return tuple(dict.fromkeys(items))


def _status(cur: Cursor, tag: str) -> c.Command:
    # status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")" (RFC 9051 §6.3.11)
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    return c.Status(tag=tag, mailbox=mailbox, items=_status_items(cur))


def _list(cur: Cursor, tag: str) -> c.Command:
    # list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    # (RFC 9051 §6.3.9, RFC 5258 §6)
    cur.sp()
    select: set[str] = set()
    if cur.take(b"("):
        if not cur.take(b")"):
            while True:
                opt = cur.keyword()
                if opt not in LIST_SELECT_OPTS:
                    raise ImapBad(f"unknown LIST selection option {opt}")
                select.add(opt)
                if cur.take(b")"):
                    break
                cur.sp()
        cur.sp()
        # RFC 5258 §3.1: RECURSIVEMATCH needs another (base) selection option.
        if "RECURSIVEMATCH" in select and not select & LIST_SELECT_BASE:
            raise ImapBad("RECURSIVEMATCH requires a base selection option")
    reference = cur.mailbox()
    cur.sp()
    patterns: list[str] = []
    if cur.take(b"("):
        while True:
            patterns.append(cur.list_mailbox())
            if cur.take(b")"):
                break
            cur.sp()
    else:
        patterns.append(cur.list_mailbox())
    returns: set[str] = set()
    status_items: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()
    if cur.take(b" "):
        cur.expect(b"RETURN", "RETURN")
        cur.sp()
        cur.expect(b"(")
        if not cur.take(b")"):
            while True:
                opt = cur.keyword()
                if opt not in LIST_RETURN_OPTS:
                    raise ImapBad(f"unknown LIST return option {opt}")
                if opt == "STATUS":
                    cur.sp()
                    status_items = _status_items(cur)
                elif opt == "METADATA":
                    cur.sp()
                    metadata = _list_metadata(cur)
                returns.add(opt)
                if cur.take(b")"):
                    break
                cur.sp()
    return c.ListCmd(
        tag=tag,
        reference=reference,
        patterns=tuple(patterns),
        select_opts=frozenset(select),
        return_opts=frozenset(returns),
        status_items=status_items,
        metadata=metadata,
    )


def _list_metadata(cur: Cursor) -> tuple[str, ...]:
    # "METADATA" SP "(" [getmetadata-options SP] entries ")" (RFC 9590 §4); options accepted
    # and ignored (the values are small).
    cur.expect(b"(")
    if cur.peek() == b"(":
        depth = 0
        while True:
            ch = cur.peek()
            if not ch:
                raise ImapBad("unterminated METADATA options")
            depth += {b"(": 1, b")": -1}.get(ch, 0)
            cur.pos += 1
            if depth == 0:
                break
        cur.sp()
    entries: list[str] = []
    nested = cur.take(b"(")
    while True:
        entries.append(cur.text(cur.astring("metadata entry"), "metadata entry").lower())
        if cur.take(b")"):
            break
        cur.sp()
    if nested:
        cur.expect(b")")
    return tuple(entries)


def _lsub(cur: Cursor, tag: str) -> c.Command:
    # lsub = "LSUB" SP mailbox SP list-mailbox (RFC 3501 §6.3.9)
    cur.sp()
    reference = cur.mailbox()
    cur.sp()
    return c.Lsub(tag=tag, reference=reference, pattern=cur.list_mailbox())


def _plain(
    fn: Callable[[Cursor, str, bool], c.Command], uid: bool
) -> Callable[[Cursor, str], c.Command]:
    def parse(cur: Cursor, tag: str) -> c.Command:
        return fn(cur, tag, uid)

    return parse


PARSERS: Final[dict[str, Callable[[Cursor, str], c.Command]]] = {
    "CAPABILITY": _no_args(c.Capability),
    "NOOP": _no_args(c.Noop),
    "LOGOUT": _no_args(c.Logout),
    "ID": _id,
    "STARTTLS": _no_args(c.StartTls),
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ENABLE": _enable,
    "NAMESPACE": _no_args(c.NamespaceCmd),
    "LIST": _list,
    "LSUB": _lsub,
    "CREATE": ext.create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "STATUS": _status,
    "SELECT": ext.select(readonly=False),
    "EXAMINE": ext.select(readonly=True),
    "APPEND": ext.append,
    "IDLE": _no_args(c.Idle),
    "CHECK": _no_args(c.Check),
    "CLOSE": _no_args(c.Close),
    "UNSELECT": _no_args(c.Unselect),
    "EXPUNGE": _no_args(c.Expunge),
    "FETCH": _plain(fetch, uid=False),
    "STORE": _plain(store, uid=False),
    "SEARCH": _plain(search, uid=False),
    "COPY": _plain(copy, uid=False),
    "MOVE": _plain(move, uid=False),
    "REPLACE": _plain(replace, uid=False),
    "SORT": _plain(sort, uid=False),
    "THREAD": _plain(thread, uid=False),
    "GETQUOTAROOT": ext.getquotaroot,
    "GETQUOTA": ext.getquota,
    "SETQUOTA": ext.setquota,
    "GETMETADATA": ext.getmetadata,
    "SETMETADATA": ext.setmetadata,
    "COMPRESS": ext.compress,
    "ESEARCH": ext.esearch,
    "NOTIFY": ext.notify,
}

UID_PARSERS: Final[dict[str, Callable[[Cursor, str], c.Command]]] = {
    "FETCH": _plain(fetch, uid=True),
    "STORE": _plain(store, uid=True),
    "SEARCH": _plain(search, uid=True),
    "COPY": _plain(copy, uid=True),
    "MOVE": _plain(move, uid=True),
    "REPLACE": _plain(replace, uid=True),
    "SORT": _plain(sort, uid=True),
    "THREAD": _plain(thread, uid=True),
    "EXPUNGE": uid_expunge,
}
