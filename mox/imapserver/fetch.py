"""FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9, §7.5.2; BINARY from RFC 3516).

Implementation notes:
- Message bytes are read, and parsed (``mox.imapserver.message``), only when an item needs them, one
  message at a time; after each message's response we wait while the client's write buffer is
  full, so output stays bounded.
- A non-PEEK body fetch in a read-write mailbox sets \\Seen first (one store write for all messages
  that lack it); such messages then get FLAGS in their response even when not asked
  (RFC 9051 §6.4.5).
- UID FETCH always returns UID (RFC 9051 §6.4.9). Messages expunged by another session but not yet
  announced are silently left out (RFC 2180 §4.1.3 allows this).
- ENVELOPE, BODY, BODYSTRUCTURE and PREVIEW come from the parse cache in the store
  (``mox.imapserver.parsed``); messages parsed for this FETCH are added to it afterwards, in one
  write.
- CONDSTORE (RFC 7162 §3.1.4): MODSEQ item, CHANGEDSINCE (implies MODSEQ), and with QRESYNC the
  VANISHED modifier, answered from the store's tombstones before the FETCH responses (§3.2.6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.commands import compact_set
from mox.imap.errors import ImapBad, ImapNo
from mox.imap.responses import NIL, ListValue, Literal, Str, Value, Vanished, atoms
from mox.imapserver import parsed as cache
from mox.imapserver.common import code, internal_date
from mox.imapserver.message import (
    Part,
    decode_transfer_encoding,
    find_part,
    parse_part,
    select_header_fields,
)
from mox.imapserver.selected import sort_flags
from mox.store import Account, Message, StoreError

if TYPE_CHECKING:
    from mox.imapserver.common import Ok
    from mox.imapserver.session import Session

_UID: Final = c.FetchSimple("UID")
_FLAGS: Final = c.FetchSimple("FLAGS")
_MODSEQ: Final = c.FetchSimple("MODSEQ")
_CACHED: Final = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE", "PREVIEW"})


def sets_seen(item: c.FetchAttr) -> bool:
    """Whether fetching item sets \\Seen (RFC 9051 §6.4.5: BODY[], BINARY[], RFC822[.TEXT])."""
    if isinstance(item, c.FetchBody):
        return not item.peek
    return isinstance(item, c.FetchSimple) and item.name in ("RFC822", "RFC822.TEXT")


class _Lazy:
    """The bytes, MIME tree and cached parse results of one message, loaded on first use."""

    def __init__(self, account: Account, msg: Message, cached: str | None = None) -> None:
        self.account = account
        self.msg = msg
        self._data: bytes | None = None
        self._root: Part | None = None
        self._parsed: cache.Parsed | cache.StoredParsed | None = None
        if cached is not None:
            self._parsed = cache.loads(cached, self._compute)
        self.computed: str | None = None  # new cache entry, to be saved

    def _compute(self) -> cache.Parsed:
        parsed = cache.compute(self.data)
        self.computed = cache.dumps(parsed)
        return parsed

    @property
    def parsed(self) -> cache.Parsed | cache.StoredParsed:
        if self._parsed is None:
            self._parsed = self._compute()
        return self._parsed

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self.account.read_message(self.msg)
        return self._data

    @property
    def root(self) -> Part:
        if self._root is None:
            self._root = parse_part(self.data)
        return self._root


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    start, length = partial
    return data[start : start + length]  # RFC 9051 §6.4.5: past the end gives ""


def section_bytes(lazy: _Lazy, section: c.Section) -> bytes | None:
    """The octets of BODY[section]; None when the part does not exist."""
    if not section.part and section.text is None:
        return lazy.data
    root = lazy.root
    if section.text in (None, "MIME"):
        part = find_part(root, section.part)
        if part is None:
            return None
        return part.body if section.text is None else part.header
    # HEADER, HEADER.FIELDS[.NOT], TEXT of the message or of an encapsulated message/rfc822 part.
    target: Part | None = root
    if section.part:
        found = find_part(root, section.part)
        target = found.message if found is not None else None
    if target is None:
        return b""
    if section.text == "HEADER":
        return target.header
    if section.text == "TEXT":
        return target.body
    return select_header_fields(
        target.header, section.fields, exclude=section.text == "HEADER.FIELDS.NOT"
    )


def _binary(lazy: _Lazy, part_path: tuple[int, ...]) -> bytes | None:
    # RFC 3516 §4.2: BINARY[] is the whole message; a part is decoded from its transfer encoding.
    if not part_path:
        return lazy.data
    part = find_part(lazy.root, part_path)
    if part is None:
        return None
    if part.multipart or part.message is not None:
        return part.body
    decoded = decode_transfer_encoding(part)
    if decoded is None:
        raise ImapNo("unknown content-transfer-encoding", code("UNKNOWN-CTE"))  # RFC 3516 §4.3
    return decoded


def _content(data: bytes, *, binary: bool = False) -> Value:
    """Message content: a literal (literal8 for binary data with NUL, RFC 3516 §4.2), or ""."""
    if not data:
        return Str(b"")
    return Literal(data, binary=binary and b"\x00" in data)


def fetch_items(
    account: Account,
    msg: Message,
    items: list[c.FetchAttr],
    *,
    add_flags: bool,
    lazy: _Lazy | None = None,
) -> list[tuple[str, Value]]:
    """The FETCH response items for one message, in the requested order."""
    if lazy is None:
        lazy = _Lazy(account, msg)
    out: list[tuple[str, Value]] = []
    for item in items:
        if isinstance(item, c.FetchSimple):
            name = item.name
            if name == "FLAGS":
                out.append((name, atoms(sort_flags(msg.flags))))
            elif name == "UID":
                out.append((name, msg.uid))
            elif name == "RFC822.SIZE":
                out.append((name, msg.size))
            elif name == "INTERNALDATE":
                out.append((name, Str(internal_date(msg.internal_date))))
            elif name == "ENVELOPE":
                out.append((name, lazy.parsed.fetch_envelope))
            elif name == "BODYSTRUCTURE":
                out.append((name, lazy.parsed.bodystructure))
            elif name == "BODY":
                out.append((name, lazy.parsed.body))
            elif name == "MODSEQ":
                out.append((name, ListValue((max(msg.modseq, 1),))))  # RFC 7162 §3.1.4.1
            elif name == "SAVEDATE":
                # RFC 8514 §4.2: NIL when the save date is not known.
                saved = msg.save_date
                out.append((name, NIL if saved is None else Str(internal_date(saved))))
            elif name == "PREVIEW":
                out.append((name, Str(lazy.parsed.preview)))  # RFC 8970 §3
            elif name == "RFC822":
                out.append((name, _content(lazy.data)))
            elif name == "RFC822.HEADER":
                out.append((name, _content(lazy.root.header)))
            else:  # RFC822.TEXT
                out.append((name, _content(lazy.root.body)))
        elif isinstance(item, c.FetchBinarySize):
            data = _binary(lazy, item.part)
            key = "BINARY.SIZE[" + ".".join(map(str, item.part)) + "]"
            out.append((key, NIL if data is None else len(data)))
        else:
            label = "BINARY" if item.binary else "BODY"
            body = (
                _binary(lazy, item.section.part)
                if item.binary
                else section_bytes(lazy, item.section)
            )
            key = f"{label}[{item.section}]"
            if item.partial is not None:
                key += f"<{item.partial[0]}>"
            if body is None:
                out.append((key, NIL))
            else:
                data = _partial(body, item.partial)
                out.append((key, _content(data, binary=item.binary)))
    if add_flags:
        out.append(("FLAGS", atoms(sort_flags(msg.flags))))
    return out


async def fetch(s: Session, cmd: c.Fetch) -> Ok | None:
    sel = s.require_selected()
    account = s.require_account()
    targets = sel.resolve(cmd.seqset, uid=cmd.uid)
    items = list(cmd.items)
    if cmd.uid and _UID not in items:
        items.insert(0, _UID)  # RFC 9051 §6.4.9
    if cmd.changed_since is not None and _MODSEQ not in items:
        items.append(_MODSEQ)  # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
    if _MODSEQ in items:
        s.conn.enable("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE enabling command
    if cmd.vanished:
        if "QRESYNC" not in s.conn.enabled:
            raise ImapBad("ENABLE QRESYNC first")  # RFC 7162 §3.2.6
        _send_vanished(s, cmd)
    uids = [uid for _, uid in targets if uid not in sel.expunged]
    msgs = {m.uid: m for m in account.get_messages(sel.mailbox_id, uids)} if uids else {}
    if cmd.changed_since is not None:
        since = cmd.changed_since
        msgs = {u: m for u, m in msgs.items() if m.modseq > since}
    cached: dict[int, str] = {}
    if any(isinstance(i, c.FetchSimple) and i.name in _CACHED for i in items):
        cached = account.get_parsed(m.id for m in msgs.values())
    seen_added: set[int] = set()
    if not sel.readonly and any(sets_seen(i) for i in items):
        unseen = [u for u in uids if u in msgs and "\\Seen" not in msgs[u].flags]
        if unseen:
            changed = await account.store_flags(sel.mailbox_id, unseen, "add", ["\\Seen"])
            for m in changed:
                msgs[m.uid] = m
                seen_added.add(m.uid)
    with_flags = _FLAGS in items
    computed: dict[int, str] = {}
    for seq, uid in targets:
        msg = msgs.get(uid)
        if msg is None:
            continue
        lazy = _Lazy(account, msg, cached.get(msg.id))
        try:
            out = fetch_items(
                account, msg, items, add_flags=uid in seen_added and not with_flags, lazy=lazy
            )
        except StoreError:
            continue  # expunged by another session since get_messages (RFC 2180 §4.1.3)
        if uid in seen_added and sel.condstore and _MODSEQ not in items:
            out.append(("MODSEQ", ListValue((msg.modseq,))))  # RFC 7162 §3.1.4.1
        if lazy.computed is not None:
            computed[msg.id] = lazy.computed
        if with_flags or uid in seen_added:
            sel.note_messages([msg])
        s.send(sel.fetch_response(seq, uid, out))
        await s.maybe_drain()
    await account.save_parsed(computed)
    return None


def _send_vanished(s: Session, cmd: c.Fetch) -> None:
    """RFC 7162 §3.2.6: UIDs in the set expunged after CHANGEDSINCE, as VANISHED (EARLIER)."""
    sel = s.require_selected()
    since = cmd.changed_since or 0
    _, gone = s.require_account().changes_since(sel.mailbox_id, since)
    star = max([*sel.uids, *gone, 1])
    gone = [u for u in gone if cmd.seqset.contains(u, star) and sel.seq_of(u) is None]
    if gone:
        s.send(Vanished(compact_set(gone), earlier=True))
