"""SEARCH, UID SEARCH (RFC 9051 §6.4.4) and multi-mailbox ESEARCH (RFC 7377).

Result forms: ESEARCH (RFC 9051 §7.3.4, RFC 4731) for IMAP4rev2 clients and whenever RETURN is
given, otherwise the IMAP4rev1 "* SEARCH". SEARCHRES (RFC 5182): RETURN (SAVE) keeps the result
for "$". CONDSTORE (RFC 7162 §3.1.5): the MODSEQ key, and the highest modseq of the matches in the
result. SAVEDATE (RFC 8514 §4.3) and WITHIN (RFC 5032) keys.

Implementation notes:
- Keys are evaluated per message, in sequence order. BODY and TEXT are answered from the store's
  full-text index (``Account.fts_search``, one query per key for the whole mailbox, case-insensitive
  substring of the charset- and transfer-decoded text); only messages stored before the index
  existed are read and decoded (``text_parts``). Header keys parse the message header. When the
  index narrows the key down (``candidates``: a BODY/TEXT key, in an AND or both sides of an OR),
  only those messages are loaded and evaluated.
- SINCE/BEFORE/ON compare the date of the internal date (UTC), SENT* that of the Date header, both
  disregarding time and zone (RFC 9051 §6.4.4). SAVED* use the save date, or the internal date for
  messages without one.
- Every ``YIELD_EVERY`` messages we yield to the event loop so other sessions keep running; for a
  long search an INPROGRESS response tells the client how far we are (RFC 9585 §3).
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.commands import compact_set
from mox.imap.errors import ImapBad, ImapNo
from mox.imap.responses import (
    Atom,
    ESearchData,
    ListValue,
    ResponseCode,
    SearchData,
    Str,
    Untagged,
)
from mox.imapserver.message import (
    Part,
    decoded_header,
    header_fields,
    parse_part,
    split_header,
    text_parts,
)
from mox.store import Account, Mailbox, Message, StoreError

if TYPE_CHECKING:
    from mox.imapserver.common import Ok
    from mox.imapserver.session import Session

YIELD_EVERY: Final = 200
PROGRESS_EVERY: Final = 1000
CHARSETS: Final = ("US-ASCII", "UTF-8")


class Index:
    """Per-search lookups: full-text results per BODY/TEXT key, the unindexed messages, "$"."""

    def __init__(self, account: Account, mailbox_id: int, key: c.SearchKey, saved: list[int]):
        self.fts: dict[c.SearchBody, set[int] | None] = {}
        for k in _walk(key):
            if isinstance(k, c.SearchBody) and k not in self.fts:
                self.fts[k] = account.fts_search(mailbox_id, k.value, text=k.text)
        self.unindexed = account.unindexed_uids(mailbox_id) if self.fts else set()
        self.saved = set(saved)
        self.now = datetime.now(UTC)


def candidates(key: c.SearchKey, index: Index) -> set[int] | None:
    """UIDs that can possibly match key, as far as the full-text index tells; None: any.

    A BODY/TEXT key can only match its index hits and the unindexed messages; an AND of keys only
    messages all its narrowed keys allow; an OR only when both sides are narrowed. So a search with
    a BODY key evaluates (and loads) only a few messages instead of the whole mailbox."""
    if isinstance(key, c.SearchBody):
        found = index.fts.get(key)
        return None if found is None else found | index.unindexed
    if isinstance(key, c.SearchAnd):
        out: set[int] | None = None
        for k in key.keys:
            sub = candidates(k, index)
            if sub is not None:
                out = sub if out is None else out & sub
        return out
    if isinstance(key, c.SearchOr):
        left = candidates(key.left, index)
        right = candidates(key.right, index) if left is not None else None
        return None if left is None or right is None else left | right
    return None


def _walk(key: c.SearchKey) -> Iterator[c.SearchKey]:
    yield key
    if isinstance(key, c.SearchNot):
        yield from _walk(key.key)
    elif isinstance(key, c.SearchOr):
        yield from _walk(key.left)
        yield from _walk(key.right)
    elif isinstance(key, c.SearchAnd):
        for k in key.keys:
            yield from _walk(k)


class _Ctx:
    """One message under evaluation; content loaded on first use."""

    def __init__(
        self,
        account: Account,
        msg: Message,
        seq: int,
        max_seq: int,
        max_uid: int,
        index: Index | None = None,
    ):
        self.account = account
        self.msg = msg
        self.seq = seq
        self.max_seq = max_seq
        self.max_uid = max_uid
        self.index = index
        self._root: Part | None = None
        self._head: Part | None = None

    @property
    def root(self) -> Part:
        if self._root is None:
            self._root = parse_part(self.account.read_message(self.msg))
        return self._root

    @property
    def head(self) -> Part:
        """The top-level header only (for header keys): no MIME parse of the body."""
        if self._root is not None:
            return self._root
        if self._head is None:
            header, _ = split_header(self.account.read_message(self.msg))
            self._head = parse_part(header)
        return self._head

    def sent_date(self) -> date | None:
        value = self.head.headers.get("Date")
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


def _body_matches(key: c.SearchBody, ctx: _Ctx) -> bool:
    index = ctx.index
    if index is not None and key in index.fts and ctx.msg.uid not in index.unindexed:
        found = index.fts[key]
        return found is None or ctx.msg.uid in found
    if key.text:
        root = ctx.root
        for name, _ in header_fields(root.header):
            if any(_contains(v, key.value) for v in decoded_header(root.headers, name)):
                return True
    return any(_contains(t, key.value) for t in text_parts(ctx.root))


def matches(key: c.SearchKey, ctx: _Ctx) -> bool:
    """Evaluate a search key for one message (RFC 9051 §6.4.4)."""
    if isinstance(key, c.SearchAll | c.SearchSaveDateSupported):
        return True  # RFC 8514 §4.3: every mailbox here keeps save dates
    if isinstance(key, c.SearchFlag):
        return (key.flag in ctx.msg.flags) == key.set
    if isinstance(key, c.SearchSeq):
        if key.seqset.saved:
            return ctx.index is not None and ctx.msg.uid in ctx.index.saved  # RFC 5182 §2.1
        return key.seqset.contains(ctx.seq, ctx.max_seq)
    if isinstance(key, c.SearchUid):
        if key.seqset.saved:
            return ctx.index is not None and ctx.msg.uid in ctx.index.saved
        return key.seqset.contains(ctx.msg.uid, ctx.max_uid)
    if isinstance(key, c.SearchSize):
        return ctx.msg.size > key.size if key.larger else ctx.msg.size < key.size
    if isinstance(key, c.SearchDate):
        if key.sent:
            sent = ctx.sent_date()
            return sent is not None and _compare(key.op, sent, key.date)
        return _compare(key.op, ctx.msg.internal_date.date(), key.date)
    if isinstance(key, c.SearchSaveDate):
        saved = ctx.msg.save_date or ctx.msg.internal_date
        return _compare(key.op, saved.date(), key.date)
    if isinstance(key, c.SearchModseq):
        return ctx.msg.modseq >= key.modseq  # RFC 7162 §3.1.5
    if isinstance(key, c.SearchWithin):
        # RFC 5032 §3: OLDER n: internal date at least n seconds ago; YOUNGER n: within n.
        now = ctx.index.now if ctx.index is not None else datetime.now(UTC)
        cutoff = now - timedelta(seconds=key.seconds)
        return ctx.msg.internal_date <= cutoff if key.older else ctx.msg.internal_date > cutoff
    if isinstance(key, c.SearchHeader):
        values = decoded_header(ctx.head.headers, key.field)
        # RFC 9051 §6.4.4: an empty string matches every message that has the field.
        return any(_contains(v, key.value) for v in values)
    if isinstance(key, c.SearchBody):
        return _body_matches(key, ctx)
    if isinstance(key, c.SearchNot):
        return not matches(key.key, ctx)
    if isinstance(key, c.SearchOr):
        return matches(key.left, ctx) or matches(key.right, ctx)
    return all(matches(k, ctx) for k in key.keys)


def check_charset(charset: str | None) -> None:
    if charset is not None and charset not in CHARSETS:
        # RFC 9051 §6.4.4 and §7.1: BADCHARSET lists what we support.
        bad = ResponseCode("BADCHARSET", (ListValue(tuple(Atom(x) for x in CHARSETS)),))
        raise ImapNo("unsupported charset", bad)


def uses_modseq(key: c.SearchKey) -> bool:
    return any(isinstance(k, c.SearchModseq) for k in _walk(key))


async def run_search(
    s: Session,
    account: Account,
    mailbox_id: int,
    uids: list[int],
    key: c.SearchKey,
    *,
    saved: list[int],
    tag: str,
) -> list[Message]:
    """The messages (of uids, in that order) matching key; sequence numbers are positions."""
    index = Index(account, mailbox_id, key, saved)
    max_uid = uids[-1] if uids else 0
    max_seq = len(uids)
    narrowed = candidates(key, index)
    if narrowed is None:
        todo = list(enumerate(uids))
        msgs = {m.uid: m for m in account.list_messages(mailbox_id)}
    else:
        todo = [(i, u) for i, u in enumerate(uids) if u in narrowed]
        msgs = {m.uid: m for m in account.get_messages(mailbox_id, [u for _, u in todo])}
    found: list[Message] = []
    total = len(todo)
    for n, (i, uid) in enumerate(todo):
        msg = msgs.get(uid)
        if msg is not None:
            try:
                if matches(key, _Ctx(account, msg, i + 1, max_seq, max_uid, index)):
                    found.append(msg)
            except StoreError:
                pass  # expunged by another session while we searched
        if n % YIELD_EVERY == YIELD_EVERY - 1:
            if total > PROGRESS_EVERY and (n + 1) % PROGRESS_EVERY < YIELD_EVERY:
                # RFC 9585 §3: INPROGRESS ("tag" done total)
                progress = ListValue((Str(tag), n + 1, total))
                s.send(Untagged("OK", "searching", ResponseCode("INPROGRESS", (progress,))))
                await s.drain()
            await asyncio.sleep(0)
    return found


async def search(s: Session, cmd: c.Search) -> Ok | None:
    sel = s.require_selected()
    account = s.require_account()
    check_charset(cmd.charset)
    with_modseq = uses_modseq(cmd.key)
    if with_modseq:
        s.conn.enable("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE enabling command
    uids = list(sel.uids)
    found = await run_search(
        s, account, sel.mailbox_id, uids, cmd.key, saved=sel.saved, tag=cmd.tag
    )
    position = {u: i + 1 for i, u in enumerate(uids)}
    numbers = [m.uid if cmd.uid else position[m.uid] for m in found]
    highest = max((m.modseq for m in found), default=None) if with_modseq else None
    opts = cmd.return_opts
    if opts is not None and "SAVE" in opts:
        # RFC 5182 §2.1: with MIN and/or MAX only (no ALL or COUNT) only those are saved.
        if {"MIN", "MAX"} & set(opts) and not {"ALL", "COUNT"} & set(opts):
            keep = set()
            if found and "MIN" in opts:
                keep.add(found[0].uid)
            if found and "MAX" in opts:
                keep.add(found[-1].uid)
            sel.saved = sorted(keep)
        else:
            sel.saved = [m.uid for m in found]
        if set(opts) == {"SAVE"}:
            return None  # RFC 5182 §2.1: no ESEARCH response for RETURN (SAVE) alone
    if opts is None and not s.conn.rev2:
        s.send(SearchData(tuple(numbers), highest))  # RFC 3501 §7.2.5, RFC 7162 §3.1.5
        return None
    s.send(esearch_data(cmd.tag, cmd.uid, numbers, opts or (), highest))
    return None


def esearch_data(
    tag: str,
    uid: bool,
    numbers: list[int],
    opts: tuple[str, ...],
    highest: int | None,
    mailbox: Mailbox | None = None,
) -> ESearchData:
    # RFC 9051 §6.4.4: RETURN () or no RETURN means ALL.
    if not set(opts) - {"SAVE"}:
        opts = ("ALL",)
    items: list[tuple[str, int | str]] = []
    if numbers and "MIN" in opts:
        items.append(("MIN", min(numbers)))
    if numbers and "MAX" in opts:
        items.append(("MAX", max(numbers)))
    if numbers and "ALL" in opts:
        items.append(("ALL", compact_set(numbers)))
    if "COUNT" in opts:
        items.append(("COUNT", len(numbers)))
    if highest is not None and numbers:
        items.append(("MODSEQ", highest))  # RFC 7162 §3.1.5
    if mailbox is not None:
        return ESearchData(tag, uid, tuple(items), mailbox.name, mailbox.uidvalidity)
    return ESearchData(tag, uid, tuple(items))


def _sources(s: Session, cmd: c.ESearch) -> list[Mailbox]:
    """The mailboxes named by the IN filters (RFC 7377 §2, RFC 5465 §6)."""
    account = s.require_account()
    mailboxes = account.list_mailboxes()
    subscribed = set(account.subscriptions())
    out: dict[int, Mailbox] = {}
    for kind, names in cmd.sources:
        for mb in mailboxes:
            hit = False
            if kind in ("SELECTED", "SELECTED-DELAYED"):
                hit = s.selected is not None and s.selected.mailbox_id == mb.id
            elif kind == "PERSONAL":
                hit = True
            elif kind == "INBOXES":
                hit = mb.name == "Inbox"
            elif kind == "SUBSCRIBED":
                hit = mb.name in subscribed
            else:
                for n in names:
                    n = "Inbox" + n[5:] if n[:5].upper() == "INBOX" else n
                    below = mb.name.startswith(n + "/")
                    if kind == "SUBTREE-ONE":
                        below = below and "/" not in mb.name[len(n) + 1 :]
                    elif kind == "MAILBOXES":
                        below = False
                    hit = hit or mb.name == n or below
            if hit:
                out[mb.id] = mb
    return sorted(out.values(), key=lambda m: m.name)


async def esearch(s: Session, cmd: c.ESearch) -> Ok | None:
    # RFC 7377 §2: results are UIDs, one ESEARCH response per mailbox with matches.
    account = s.require_account()
    check_charset(cmd.charset)
    if any(isinstance(k, c.SearchSeq) for k in _walk(cmd.key)):
        raise ImapBad("message sequence numbers cannot be used across mailboxes")
    with_modseq = uses_modseq(cmd.key)
    for mb in _sources(s, cmd):
        if s.selected is not None and s.selected.mailbox_id == mb.id:
            uids = list(s.selected.uids)
        else:
            uids = [m.uid for m in account.list_messages(mb.id)]
        found = await run_search(s, account, mb.id, uids, cmd.key, saved=[], tag=cmd.tag)
        if not found:
            continue  # RFC 7377 §2.1: no response for mailboxes without matches
        highest = max((m.modseq for m in found), default=None) if with_modseq else None
        numbers = [m.uid for m in found]
        s.send(esearch_data(cmd.tag, True, numbers, cmd.return_opts, highest, mb))
    return None
