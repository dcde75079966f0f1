"""SEARCH and UID SEARCH (RFC 9051 §6.4.4; ESEARCH response form RFC 9051 §7.3.4, RFC 4731).

Implementation notes:
- Keys are evaluated per message, in sequence order. Header and body keys read and parse the message
  file only when reached; BODY/TEXT search the transfer- and charset-decoded text of the text parts
  (case-insensitive substring, like the Go mox's store/search.go); there is no full-text index.
- SINCE/BEFORE/ON compare the date of the internal date (UTC), SENT* that of the Date header, both
  disregarding time and zone (RFC 9051 §6.4.4).
- The ESEARCH form is used for IMAP4rev2 clients and whenever RETURN is given; otherwise the
  IMAP4rev1 "* SEARCH" form.
- Every ``YIELD_EVERY`` messages we yield to the event loop so other sessions keep running.
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import date
from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.commands import compact_set
from mox.imap.errors import ImapNo
from mox.imap.responses import Atom, ESearchData, ListValue, ResponseCode, SearchData
from mox.imapserver.message import Part, decoded_header, header_fields, parse_part, text_parts
from mox.store import Account, Message, StoreError

if TYPE_CHECKING:
    from mox.imapserver.common import Ok
    from mox.imapserver.session import Session

YIELD_EVERY: Final = 200
CHARSETS: Final = ("US-ASCII", "UTF-8")


class _Ctx:
    """One message under evaluation; content loaded on first use."""

    def __init__(self, account: Account, msg: Message, seq: int, max_seq: int, max_uid: int):
        self.account = account
        self.msg = msg
        self.seq = seq
        self.max_seq = max_seq
        self.max_uid = max_uid
        self._root: Part | None = None

    @property
    def root(self) -> Part:
        if self._root is None:
            self._root = parse_part(self.account.read_message(self.msg))
        return self._root

    def sent_date(self) -> date | None:
        value = self.root.headers.get("Date")
        if value is None:
            return None
        try:
            return email.utils.parsedate_to_datetime(str(value)).date()
        except (TypeError, ValueError, IndexError):
            return None


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


def _compare(op: str, left: date, right: date) -> bool:
    if op == "BEFORE":
        return left < right
    if op == "ON":
        return left == right
    return left >= right  # SINCE


def matches(key: c.SearchKey, ctx: _Ctx) -> bool:
    """Evaluate a search key for one message (RFC 9051 §6.4.4)."""
    if isinstance(key, c.SearchAll):
        return True
    if isinstance(key, c.SearchFlag):
        return (key.flag in ctx.msg.flags) == key.set
    if isinstance(key, c.SearchSeq):
        return key.seqset.contains(ctx.seq, ctx.max_seq)
    if isinstance(key, c.SearchUid):
        return key.seqset.contains(ctx.msg.uid, ctx.max_uid)
    if isinstance(key, c.SearchSize):
        return ctx.msg.size > key.size if key.larger else ctx.msg.size < key.size
    if isinstance(key, c.SearchDate):
        if key.sent:
            sent = ctx.sent_date()
            return sent is not None and _compare(key.op, sent, key.date)
        return _compare(key.op, ctx.msg.internal_date.date(), key.date)
    if isinstance(key, c.SearchHeader):
        values = decoded_header(ctx.root.headers, key.field)
        # RFC 9051 §6.4.4: an empty string matches every message that has the field.
        return any(_contains(v, key.value) for v in values)
    if isinstance(key, c.SearchBody):
        if key.text:
            root = ctx.root
            for name, _ in header_fields(root.header):
                if any(_contains(v, key.value) for v in decoded_header(root.headers, name)):
                    return True
        return any(_contains(t, key.value) for t in text_parts(ctx.root))
    if isinstance(key, c.SearchNot):
        return not matches(key.key, ctx)
    if isinstance(key, c.SearchOr):
        return matches(key.left, ctx) or matches(key.right, ctx)
    return all(matches(k, ctx) for k in key.keys)


async def search(s: Session, cmd: c.Search) -> Ok | None:
    sel = s.require_selected()
    account = s.require_account()
    if cmd.charset is not None and cmd.charset not in CHARSETS:
        # RFC 9051 §6.4.4 and §7.1: BADCHARSET lists what we support.
        bad = ResponseCode("BADCHARSET", (ListValue(tuple(Atom(x) for x in CHARSETS)),))
        raise ImapNo("unsupported charset", bad)
    msgs = {m.uid: m for m in account.list_messages(sel.mailbox_id)}
    max_uid = sel.uids[-1] if sel.uids else 0
    found: list[int] = []
    for i, uid in enumerate(list(sel.uids)):
        msg = msgs.get(uid)
        if msg is None:
            continue  # expunged, not yet announced
        try:
            if matches(cmd.key, _Ctx(account, msg, i + 1, len(sel.uids), max_uid)):
                found.append(uid if cmd.uid else i + 1)
        except StoreError:
            pass  # expunged by another session while we searched
        if i % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    if cmd.return_opts is None and not s.conn.rev2:
        s.send(SearchData(tuple(found)))  # RFC 3501 §7.2.5
        return None
    # RFC 9051 §6.4.4: RETURN () or no RETURN means ALL.
    opts = cmd.return_opts or ("ALL",)
    items: list[tuple[str, int | str]] = []
    if found and "MIN" in opts:
        items.append(("MIN", min(found)))
    if found and "MAX" in opts:
        items.append(("MAX", max(found)))
    if found and "ALL" in opts:
        items.append(("ALL", compact_set(found)))
    if "COUNT" in opts:
        items.append(("COUNT", len(found)))
    s.send(ESearchData(cmd.tag, cmd.uid, tuple(items)))
    return None
