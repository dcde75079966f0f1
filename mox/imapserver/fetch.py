"""FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9, §7.5.2; BINARY from RFC 3516).

Implementation notes:
- Message bytes are read, and parsed (``mox.imapserver.message``), only when an item needs them, one
  message at a time; after each message's response we wait for the write buffer to drain.
- A non-PEEK body fetch in a read-write mailbox sets \\Seen first (one store write for all messages
  that lack it); such messages then get FLAGS in their response even when not asked
  (RFC 9051 §6.4.5).
- UID FETCH always returns UID (RFC 9051 §6.4.9). Messages expunged by another session but not yet
  announced are silently left out (RFC 2180 §4.1.3 allows this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.errors import ImapNo
from mox.imap.responses import NIL, Fetch, Literal, Str, Value, atoms
from mox.imapserver.common import code, internal_date
from mox.imapserver.message import (
    Part,
    body_structure,
    decode_transfer_encoding,
    envelope,
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


def sets_seen(item: c.FetchAttr) -> bool:
    """Whether fetching item sets \\Seen (RFC 9051 §6.4.5: BODY[], BINARY[], RFC822[.TEXT])."""
    if isinstance(item, c.FetchBody):
        return not item.peek
    return isinstance(item, c.FetchSimple) and item.name in ("RFC822", "RFC822.TEXT")


class _Lazy:
    """The bytes and MIME tree of one message, loaded on first use."""

    def __init__(self, account: Account, msg: Message) -> None:
        self.account = account
        self.msg = msg
        self._data: bytes | None = None
        self._root: Part | None = None

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
    account: Account, msg: Message, items: list[c.FetchAttr], *, add_flags: bool
) -> list[tuple[str, Value]]:
    """The FETCH response items for one message, in the requested order."""
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
                out.append((name, envelope(lazy.root)))
            elif name == "BODYSTRUCTURE":
                out.append((name, body_structure(lazy.root, extensible=True)))
            elif name == "BODY":
                out.append((name, body_structure(lazy.root, extensible=False)))
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
    uids = [uid for _, uid in targets if uid not in sel.expunged]
    msgs = {m.uid: m for m in account.get_messages(sel.mailbox_id, uids)} if uids else {}
    seen_added: set[int] = set()
    if not sel.readonly and any(sets_seen(i) for i in items):
        unseen = [u for u in uids if u in msgs and "\\Seen" not in msgs[u].flags]
        if unseen:
            changed = await account.store_flags(sel.mailbox_id, unseen, "add", ["\\Seen"])
            for m in changed:
                msgs[m.uid] = m
                seen_added.add(m.uid)
    with_flags = _FLAGS in items
    for seq, uid in targets:
        msg = msgs.get(uid)
        if msg is None:
            continue
        try:
            out = fetch_items(account, msg, items, add_flags=uid in seen_added and not with_flags)
        except StoreError:
            continue  # expunged by another session since get_messages (RFC 2180 §4.1.3)
        if with_flags or uid in seen_added:
            sel.note_messages([msg])
        s.send(Fetch(seq, tuple(out)))
        await s.drain()
    return None
