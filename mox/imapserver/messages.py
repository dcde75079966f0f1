"""Commands that change messages of the selected mailbox: STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE,
CLOSE, UNSELECT (RFC 9051 §6.4, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 3691 UNSELECT).

Implementation notes:
- Writes are committed by the store before we answer. Our own changes also arrive through the change
  feed; ``SelectedMailbox.note_messages`` records what STORE reports, so the feed does not repeat
  it.
- EXPUNGE responses for our own EXPUNGE come from the change feed at the command boundary, in the
  same way as expunges by other sessions (RFC 9051 §7.5.1 ordering is handled there).
- MOVE is one store transaction (copy and expunge); COPYUID goes out as an untagged OK before
  the EXPUNGE (or VANISHED) responses (RFC 6851 §4.3). Copies and moves set $Junk/$NotJunk by
  the destination's name (``ServerConfig.junk_flags``, as the Go mox).
- STORE with UNCHANGEDSINCE (RFC 7162 §3.1.3) leaves newer messages alone and names them in
  [MODIFIED ...]; after CONDSTORE, STORE's FETCH responses carry MODSEQ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mox.imap import commands as c
from mox.imap.commands import compact_set, uid_set_in_order
from mox.imap.errors import ImapNo
from mox.imap.responses import Flags, ListValue, ResponseCode, Untagged, Value, atoms
from mox.imapserver.common import Ok, code, get_mailbox
from mox.imapserver.mailboxes import canonical_name
from mox.imapserver.selected import sort_flags
from mox.store import Message

if TYPE_CHECKING:
    from mox.imapserver.session import Session


def _writable(s: Session) -> None:
    sel = s.require_selected()
    if sel.readonly:
        raise ImapNo("mailbox is read-only (EXAMINE)", code("CANNOT"))


async def store(s: Session, cmd: c.Store) -> Ok | None:
    # RFC 9051 §6.4.6
    _writable(s)
    sel = s.require_selected()
    account = s.require_account()
    targets = [(seq, uid) for seq, uid in sel.resolve(cmd.seqset, uid=cmd.uid)]
    live = [uid for _, uid in targets if uid not in sel.expunged]
    if cmd.unchanged_since is not None:
        s.conn.enable("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE enabling command
    modified: list[int] = []
    changed: list[Message] = []
    if live and cmd.unchanged_since is not None:
        changed, modified = await account.store_flags_conditional(
            sel.mailbox_id, live, cmd.op, cmd.flags, cmd.unchanged_since
        )
    elif live:
        changed = await account.store_flags(sel.mailbox_id, live, cmd.op, cmd.flags)
    new_keywords = sel.note_messages(changed)
    if new_keywords:
        # RFC 9051 §7.3.5 and §7.1: tell the client about keywords that are new to this mailbox.
        flags = sel.all_flags()
        s.send(Flags(tuple(flags)))
        perm = ResponseCode("PERMANENTFLAGS", (atoms([*flags, "\\*"]),))
        s.send(Untagged("OK", "permanent flags", perm))
    changed_uids = {m.uid for m in changed}
    skipped = set(modified)
    reported = sel.flags_of(uid for _, uid in targets if uid not in sel.expunged)
    for seq, uid in targets:
        flags_now = reported.get(uid)
        if flags_now is None or uid in sel.expunged or uid in skipped:
            continue
        # RFC 7162 §3.1.3: with UNCHANGEDSINCE, .SILENT still reports the new MODSEQ of
        # changed messages.
        if cmd.silent and not (sel.condstore and uid in changed_uids):
            continue
        items: list[tuple[str, Value]] = []
        if cmd.uid:
            items.append(("UID", uid))  # RFC 9051 §6.4.9
        if not cmd.silent:
            items.append(("FLAGS", atoms(sort_flags(flags_now))))
        if sel.condstore:
            items.append(("MODSEQ", ListValue((max(sel.known_modseq(uid), 1),))))
        s.send(sel.fetch_response(seq, uid, items))
    if modified:
        # RFC 7162 §3.1.3: the messages that were not changed because of UNCHANGEDSINCE.
        numbers = modified if cmd.uid else [q for q, u in targets if u in skipped]
        return Ok(
            "conditional STORE failed for some messages", code("MODIFIED", compact_set(numbers))
        )
    return None


async def copy(s: Session, cmd: c.Copy) -> Ok | None:
    # RFC 9051 §6.4.7; COPYUID is RFC 4315 §3.
    sel = s.require_selected()
    account = s.require_account()
    dst = get_mailbox(account, canonical_name(cmd.mailbox), trycreate=True)
    uids = [uid for _, uid in sel.resolve(cmd.seqset, uid=cmd.uid) if uid not in sel.expunged]
    if not uids:
        return None
    junk = s.config.junk_flags
    pairs = sorted(await account.copy_messages(sel.mailbox_id, uids, dst.name, junk_flags=junk))
    if not pairs:
        return None
    src_set = uid_set_in_order([a for a, _ in pairs])
    dst_set = uid_set_in_order([b for _, b in pairs])
    return Ok("COPY completed", code("COPYUID", dst.uidvalidity, src_set, dst_set))


async def move(s: Session, cmd: c.Move) -> Ok | None:
    # RFC 6851 §3 (RFC 9051 §6.4.8); COPYUID untagged before the expunges (RFC 6851 §4.3).
    _writable(s)
    sel = s.require_selected()
    account = s.require_account()
    dst = get_mailbox(account, canonical_name(cmd.mailbox), trycreate=True)
    if dst.id == sel.mailbox_id:
        raise ImapNo("cannot move to the selected mailbox", code("CANNOT"))
    uids = [uid for _, uid in sel.resolve(cmd.seqset, uid=cmd.uid) if uid not in sel.expunged]
    if not uids:
        return None
    junk = s.config.junk_flags
    pairs = sorted(await account.move_messages(sel.mailbox_id, uids, dst.name, junk_flags=junk))
    if pairs:
        src_set = uid_set_in_order([a for a, _ in pairs])
        dst_set = uid_set_in_order([b for _, b in pairs])
        s.send(Untagged("OK", "moved", code("COPYUID", dst.uidvalidity, src_set, dst_set)))
    return None


async def expunge(s: Session, cmd: c.Expunge) -> Ok | None:
    # RFC 9051 §6.4.3; UID EXPUNGE is RFC 4315 §2.1 / RFC 9051 §6.4.9.
    _writable(s)
    sel = s.require_selected()
    account = s.require_account()
    if cmd.uids is None:
        await account.expunge(sel.mailbox_id)
        return None
    uids = [uid for _, uid in sel.resolve(cmd.uids, uid=True)]
    if uids:
        await account.expunge(sel.mailbox_id, uids)
    return None


async def close(s: Session, cmd: c.Close) -> Ok | None:
    # RFC 9051 §6.4.1: expunge silently (only when read-write), then leave the selected state.
    sel = s.require_selected()
    if not sel.readonly:
        await s.require_account().expunge(sel.mailbox_id)
    s.deselect()
    return None


async def unselect(s: Session, cmd: c.Unselect) -> Ok | None:
    s.require_selected()
    s.deselect()  # RFC 3691 §2 / RFC 9051 §6.4.2: no expunge
    return None
