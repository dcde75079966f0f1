"""Write operations, run on the account's writer thread inside the batch transaction.

Each function takes the write connection and an Effects collector: the changes to announce after
the commit, the files to unlink after the commit, and the files it created (removed again if the
operation or the commit fails). IMAP rules: UIDs and UIDNEXT RFC 9051 §2.3.1.1, UIDVALIDITY
§2.3.1.1 and §6.3.6, mailbox operations §6.3.4-§6.3.9, flags §6.4.6, modseqs RFC 7162 §3.1.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from mox.store import files
from mox.store.changes import (
    Change,
    Expunged,
    FlagsChanged,
    MailboxesChanged,
    MessageAdded,
)
from mox.store.db import (
    MAILBOX_SELECT,
    MESSAGE_COLUMNS,
    encode_flags,
    get_meta,
    mailbox_from_row,
    message_from_row,
    set_meta,
)
from mox.store.junkflags import JunkFlagRules
from mox.store.models import (
    INBOX,
    Mailbox,
    MailboxExists,
    MailboxInvalid,
    MailboxNotFound,
    Message,
    StoreError,
    check_mailbox_name,
)

FlagOp = Literal["set", "add", "remove"]


@dataclass(slots=True)
class Effects:
    changes: list[Change] = field(default_factory=list)
    unlink_after_commit: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    # Full-text rows (message id, headers, body) to insert after the batch's savepoints, just
    # before its commit: FTS5 flushes its pending terms at every savepoint release, so inserting
    # inside each operation's savepoint cost twice as much (bench/PROFILE.md).
    # Open descriptors of files the operation wrote without fsync (files.create_message): the
    # writer fsyncs them with the batch's other files before the commit, and closes them.
    sync: list[int] = field(default_factory=list)


def insert_fts_rows(conn: sqlite3.Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    if rows:
        conn.executemany("INSERT INTO fts(rowid, headers, body) VALUES (?, ?, ?)", rows)


def _mailbox(conn: sqlite3.Connection, name: str) -> Mailbox | None:
    row = conn.execute(f"{MAILBOX_SELECT} WHERE m.name = ?", (name,)).fetchone()
    return None if row is None else mailbox_from_row(row)


def _mailbox_by_id(conn: sqlite3.Connection, mailbox_id: int) -> Mailbox:
    row = conn.execute(f"{MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
    if row is None:
        raise MailboxNotFound(f"#{mailbox_id}")
    return mailbox_from_row(row)


def _children(conn: sqlite3.Connection, name: str) -> list[tuple[int, str]]:
    prefix = name + "/"
    # substr, not LIKE: "_" is a valid character in mailbox names.
    rows = conn.execute(
        "SELECT id, name FROM mailboxes WHERE substr(name, 1, ?) = ? ORDER BY name",
        (len(prefix), prefix),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def next_modseq(conn: sqlite3.Connection) -> int:
    # RFC 7162 §3.1.1: modseqs strictly increase; one counter per account makes them increase per
    # mailbox too. All messages changed by one operation share its modseq (allowed by §3.1.1).
    modseq = get_meta(conn, "modseq") + 1
    set_meta(conn, "modseq", modseq)
    return modseq


def _alloc_uids(conn: sqlite3.Connection, mb: Mailbox, n: int, modseq: int) -> int:
    """Reserve n UIDs in mb, return the first; UIDs are never reused (RFC 9051 §2.3.1.1)."""
    conn.execute(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = ? WHERE id = ?",
        (n, modseq, mb.id),
    )
    return mb.uidnext


def _insert_mailbox(conn: sqlite3.Connection, name: str, special_use: str | None) -> Mailbox:
    uidvalidity = get_meta(conn, "next_uidvalidity")
    # RFC 9051 §2.3.1.1: a new mailbox never reuses a UIDVALIDITY of an earlier one of that name.
    set_meta(conn, "next_uidvalidity", uidvalidity + 1)
    modseq = get_meta(conn, "modseq")
    cur = conn.execute(
        "INSERT INTO mailboxes(name, uidvalidity, uidnext, special_use, highest_modseq) "
        "VALUES (?, ?, 1, ?, ?)",
        (name, uidvalidity, special_use, modseq),
    )
    return _mailbox_by_id(conn, int(cur.lastrowid or 0))


def _create_parents(conn: sqlite3.Connection, name: str) -> None:
    # RFC 9051 §6.3.4 and §6.3.6: create the superior hierarchical names that are missing.
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if _mailbox(conn, parent) is None:
            _insert_mailbox(conn, parent, None)


def uids_json(uids: Sequence[int]) -> str:
    return json.dumps([int(u) for u in uids])


def _messages(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None
) -> list[Message]:
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND expunged = 0"  # noqa: S608
    params: tuple[object, ...] = (mailbox_id,)
    if uids is not None:
        sql += " AND uid IN (SELECT value FROM json_each(?))"
        params = (mailbox_id, uids_json(uids))
    rows = conn.execute(sql + " ORDER BY uid", params).fetchall()
    return [message_from_row(r) for r in rows]


def _add_message(
    conn: sqlite3.Connection,
    mb: Mailbox,
    uid: int,
    modseq: int,
    flags: frozenset[str],
    internal_date: datetime,
    size: int,
    path: str,
    save_date: datetime | None = None,
    meta: str | None = None,
) -> Message:
    """A new row; not in the full-text index yet (indexed = 0, see Account)."""
    # RFC 8514 §4: the save date is when the message was added to this mailbox.
    save = save_date or datetime.now(UTC)
    cur = conn.execute(
        "INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, path, expunged,"
        " savedate, meta, indexed) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0)",
        (
            mb.id,
            uid,
            modseq,
            encode_flags(flags),
            internal_date.isoformat(),
            size,
            path,
            save.isoformat(),
            meta,
        ),
    )
    return Message(
        id=int(cur.lastrowid or 0),
        mailbox_id=mb.id,
        uid=uid,
        modseq=modseq,
        flags=flags,
        internal_date=internal_date,
        size=size,
        path=path,
        save_date=save,
    )


def _copy_aux(conn: sqlite3.Connection, old_id: int, new_id: int, *, move: bool) -> None:
    """Give a copied or moved message the index entry and parsed cache of its source."""
    conn.execute(
        "INSERT INTO fts(rowid, headers, body) SELECT ?, headers, body FROM fts WHERE rowid = ?",
        (new_id, old_id),
    )
    conn.execute(
        "UPDATE messages SET indexed = (SELECT indexed FROM messages WHERE id = ?) WHERE id = ?",
        (old_id, new_id),
    )
    conn.execute(
        "INSERT OR IGNORE INTO message_parsed(message_id, data) "
        "SELECT ?, data FROM message_parsed WHERE message_id = ?",
        (new_id, old_id),
    )
    if move:
        _drop_aux(conn, [old_id])


def _drop_aux(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Remove index entries and parsed caches of messages that are gone."""
    for mid in ids:
        conn.execute("DELETE FROM fts WHERE rowid = ?", (mid,))
        conn.execute("DELETE FROM message_parsed WHERE message_id = ?", (mid,))


def _tombstone(conn: sqlite3.Connection, msg_id: int, modseq: int) -> None:
    # Kept with its modseq, for RFC 7162 §3.2.10 VANISHED (EARLIER) later; the file goes (or was
    # handed to a new row).
    conn.execute(
        "UPDATE messages SET expunged = 1, path = '', modseq = ?, indexed = 0 WHERE id = ?",
        (modseq, msg_id),
    )


def deliver(
    conn: sqlite3.Connection,
    fx: Effects,
    mailbox_name: str,
    path: str,
    size: int,
    flags: frozenset[str],
    internal_date: datetime,
    meta: str | None = None,
    replace: tuple[int, int] | None = None,
    create: bool = False,
) -> Message:
    """Add a message row (indexed = 0: Account indexes it after the commit)."""
    mb = _mailbox(conn, mailbox_name)
    if mb is None:
        if not create:
            raise MailboxNotFound(mailbox_name)
        # Delivery to a mailbox that does not exist yet (a destination's or a ruleset's):
        # created in the same transaction, as create_mailbox would.
        mb = create_mailbox(conn, fx, check_mailbox_name(mailbox_name), None)
    old: Message | None = None
    if replace is not None:
        # RFC 8508 §3: REPLACE appends the new message and expunges the old one, atomically.
        found = _messages(conn, replace[0], [replace[1]])
        if not found:
            raise StoreError(f"message uid {replace[1]} to replace does not exist")
        old = found[0]
    modseq = next_modseq(conn)
    uid = _alloc_uids(conn, mb, 1, modseq)
    msg = _add_message(conn, mb, uid, modseq, flags, internal_date, size, path, meta=meta)
    fx.changes.append(MessageAdded(mb.id, uid))
    if old is not None:
        conn.execute(
            "UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (modseq, old.mailbox_id)
        )
        _tombstone(conn, old.id, modseq)
        _drop_aux(conn, [old.id])
        fx.unlink_after_commit.append(old.path)
        fx.changes.append(Expunged(old.mailbox_id, (old.uid,)))
    return msg


def record_outgoing(
    conn: sqlite3.Connection, fx: Effects, recipients: list[str], when: str
) -> None:
    conn.execute(
        "INSERT INTO outgoing(submitted, recipients) VALUES (?, ?)", (when, len(recipients))
    )
    for rcpt in recipients:
        conn.execute(
            "INSERT INTO recipients_sent(address, first_sent, last_sent) VALUES (?, ?, ?) "
            "ON CONFLICT(address) DO UPDATE SET last_sent = excluded.last_sent",
            (rcpt, when, when),
        )


def create_mailbox(
    conn: sqlite3.Connection, fx: Effects, name: str, special_use: str | None
) -> Mailbox:
    if _mailbox(conn, name) is not None:
        raise MailboxExists(name)  # RFC 9051 §6.3.4
    _create_parents(conn, name)
    mb = _insert_mailbox(conn, name, special_use)
    fx.changes.append(MailboxesChanged())
    return mb


def delete_mailbox(conn: sqlite3.Connection, fx: Effects, name: str) -> None:
    if name == INBOX:
        raise MailboxInvalid("cannot delete Inbox")  # RFC 9051 §6.3.5
    mb = _mailbox(conn, name)
    if mb is None:
        raise MailboxNotFound(name)
    if _children(conn, name):
        # RFC 9051 §6.3.5 lets a server refuse; like the Go mox we do rather than keep a
        # \Noselect placeholder.
        raise MailboxInvalid(f"mailbox {name!r} has child mailboxes, delete those first")
    rows = conn.execute(
        "SELECT path FROM messages WHERE mailbox_id = ? AND expunged = 0", (mb.id,)
    ).fetchall()
    fx.unlink_after_commit.extend(r[0] for r in rows if r[0])
    conn.execute(
        "DELETE FROM fts WHERE rowid IN (SELECT id FROM messages WHERE mailbox_id = ?)", (mb.id,)
    )
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (mb.id,))
    conn.execute("DELETE FROM annotations WHERE mailbox_id = ?", (mb.id,))
    conn.execute("DELETE FROM mailboxes WHERE id = ?", (mb.id,))
    # RFC 9051 §6.3.9: the subscription is not removed when the mailbox goes away.
    fx.changes.append(MailboxesChanged())


def rename_mailbox(conn: sqlite3.Connection, fx: Effects, old: str, new: str) -> None:
    mb = _mailbox(conn, old)
    if mb is None:
        raise MailboxNotFound(old)
    if _mailbox(conn, new) is not None:
        raise MailboxExists(new)  # RFC 9051 §6.3.6
    if new == INBOX:
        raise MailboxInvalid("cannot rename to Inbox")
    if new.startswith(old + "/"):
        raise MailboxInvalid("cannot rename a mailbox into its own hierarchy")
    if old == INBOX:
        _rename_inbox(conn, fx, mb, new)
        return
    # RFC 9051 §6.3.6: inferior hierarchical names are renamed too.
    moves = [(mb.id, old, new)] + [
        (cid, cname, new + cname[len(old) :]) for cid, cname in _children(conn, old)
    ]
    for _, _, newname in moves[1:]:
        check_mailbox_name(newname)
        if _mailbox(conn, newname) is not None:
            raise MailboxExists(newname)
    _create_parents(conn, new)
    # Two passes through temporary names ("/<id>", never valid) so the renames cannot hit UNIQUE.
    for mid, _, _ in moves:
        conn.execute("UPDATE mailboxes SET name = '/' || id WHERE id = ?", (mid,))
    subscribed = {r[0] for r in conn.execute("SELECT name FROM subscriptions").fetchall()}
    for mid, oldname, newname in moves:
        conn.execute("UPDATE mailboxes SET name = ? WHERE id = ?", (newname, mid))
        # Subscriptions follow the mailbox, as the Go mox does.
        if oldname in subscribed:
            conn.execute("DELETE FROM subscriptions WHERE name = ?", (oldname,))
            conn.execute("INSERT OR IGNORE INTO subscriptions(name) VALUES (?)", (newname,))
    fx.changes.append(MailboxesChanged())


def _rename_inbox(conn: sqlite3.Connection, fx: Effects, inbox: Mailbox, new: str) -> None:
    # RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox with the given name,
    # leaving INBOX empty; its inferiors stay where they are.
    _create_parents(conn, new)
    dst = _insert_mailbox(conn, new, None)
    msgs = _messages(conn, inbox.id, None)
    if msgs:
        modseq = next_modseq(conn)
        first = _alloc_uids(conn, dst, len(msgs), modseq)
        conn.execute("UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (modseq, inbox.id))
        for i, m in enumerate(msgs):
            nm = _add_message(
                conn, dst, first + i, modseq, m.flags, m.internal_date, m.size, m.path
            )
            _copy_aux(conn, m.id, nm.id, move=True)
            # The tombstone gives up its file to the new row.
            _tombstone(conn, m.id, modseq)
        fx.changes.append(Expunged(inbox.id, tuple(m.uid for m in msgs)))
    fx.changes.append(MailboxesChanged())


def set_subscribed(conn: sqlite3.Connection, fx: Effects, name: str, subscribed: bool) -> None:
    # RFC 9051 §6.3.7/§6.3.8: a name may be subscribed whether or not the mailbox exists.
    if subscribed:
        conn.execute("INSERT OR IGNORE INTO subscriptions(name) VALUES (?)", (name,))
    else:
        conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))
    fx.changes.append(MailboxesChanged())


def store_flags(
    conn: sqlite3.Connection,
    fx: Effects,
    mailbox_id: int,
    uids: Sequence[int],
    op: FlagOp,
    flags: frozenset[str],
    unchanged_since: int | None = None,
    modified: list[int] | None = None,
) -> list[Message]:
    """Change flags; with unchanged_since, messages with a higher modseq are left alone and their
    UIDs appended to modified (RFC 7162 §3.1.3 UNCHANGEDSINCE)."""
    mb = _mailbox_by_id(conn, mailbox_id)
    changed: list[tuple[Message, frozenset[str]]] = []
    for m in _messages(conn, mb.id, uids):
        if unchanged_since is not None and m.modseq > unchanged_since:
            if modified is not None:
                modified.append(m.uid)
            continue
        # RFC 9051 §6.4.6: FLAGS replaces, +FLAGS adds, -FLAGS removes.
        if op == "set":
            nflags = flags
        elif op == "add":
            nflags = m.flags | flags
        elif op == "remove":
            nflags = m.flags - flags
        else:
            raise StoreError(f"unknown flag operation {op!r}")
        if nflags != m.flags:
            changed.append((m, nflags))
    if not changed:
        return []
    modseq = next_modseq(conn)  # RFC 7162 §3.1.1: changed metadata gets a new modseq
    conn.execute("UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (modseq, mb.id))
    result = []
    for m, nflags in changed:
        conn.execute(
            "UPDATE messages SET flags = ?, modseq = ? WHERE id = ?",
            (encode_flags(nflags), modseq, m.id),
        )
        nm = Message(
            id=m.id,
            mailbox_id=m.mailbox_id,
            uid=m.uid,
            modseq=modseq,
            flags=nflags,
            internal_date=m.internal_date,
            size=m.size,
            path=m.path,
            save_date=m.save_date,
        )
        result.append(nm)
        fx.changes.append(FlagsChanged(mb.id, m.uid, nflags, modseq))
    return result


def expunge(
    conn: sqlite3.Connection, fx: Effects, mailbox_id: int, uids: Sequence[int] | None
) -> list[int]:
    mb = _mailbox_by_id(conn, mailbox_id)
    # RFC 9051 §6.4.3 (EXPUNGE) and RFC 4315 §2.1 (UID EXPUNGE): only \Deleted messages.
    gone = [m for m in _messages(conn, mb.id, uids) if "\\Deleted" in m.flags]
    if not gone:
        return []
    modseq = next_modseq(conn)
    conn.execute("UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (modseq, mb.id))
    for m in gone:
        _tombstone(conn, m.id, modseq)
        fx.unlink_after_commit.append(m.path)
    _drop_aux(conn, [m.id for m in gone])
    result = [m.uid for m in gone]
    fx.changes.append(Expunged(mb.id, tuple(result)))
    return result


def copy_messages(
    conn: sqlite3.Connection,
    fx: Effects,
    account_dir: Path,
    src_mailbox_id: int,
    uids: Sequence[int],
    dst_name: str,
    junk: JunkFlagRules | None = None,
) -> list[tuple[int, int]]:
    src = _mailbox_by_id(conn, src_mailbox_id)
    dst = _mailbox(conn, dst_name)
    if dst is None:
        raise MailboxNotFound(dst_name)  # RFC 9051 §6.4.7: [TRYCREATE] is the server's job
    msgs = _messages(conn, src.id, uids)
    if not msgs:
        return []
    # Message files are immutable: a copy is a hard link under a new name (a copy where links
    # are not possible), so expunging either message leaves the other intact.
    dirs: set[Path] = set()
    newpaths = []
    for m in msgs:
        rel = files.new_message_path()
        files.link_or_copy(account_dir / m.path, account_dir / rel)
        fx.created.append(rel)
        newpaths.append(rel)
        dirs.add((account_dir / rel).parent)
    for d in sorted(dirs):
        files.fsync_dir(d)
    modseq = next_modseq(conn)
    first = _alloc_uids(conn, dst, len(msgs), modseq)
    result = []
    for i, (m, rel) in enumerate(zip(msgs, newpaths, strict=True)):
        uid = first + i
        flags = m.flags if junk is None else junk.apply(dst.name, m.flags)
        nm = _add_message(conn, dst, uid, modseq, flags, m.internal_date, m.size, rel)
        _copy_aux(conn, m.id, nm.id, move=False)
        fx.changes.append(MessageAdded(dst.id, uid))
        result.append((m.uid, uid))
    return result


def move_messages(
    conn: sqlite3.Connection,
    fx: Effects,
    src_mailbox_id: int,
    uids: Sequence[int],
    dst_name: str,
    junk: JunkFlagRules | None = None,
) -> list[tuple[int, int]]:
    """RFC 6851 §3.3: copy and expunge in one transaction. The file is not copied: the new row
    takes it over and the old row becomes a tombstone."""
    src = _mailbox_by_id(conn, src_mailbox_id)
    dst = _mailbox(conn, dst_name)
    if dst is None:
        raise MailboxNotFound(dst_name)
    if dst.id == src.id:
        raise MailboxInvalid("cannot move messages to the mailbox they are in")
    msgs = _messages(conn, src.id, uids)
    if not msgs:
        return []
    modseq = next_modseq(conn)
    first = _alloc_uids(conn, dst, len(msgs), modseq)
    conn.execute("UPDATE mailboxes SET highest_modseq = ? WHERE id = ?", (modseq, src.id))
    result = []
    for i, m in enumerate(msgs):
        uid = first + i
        flags = m.flags if junk is None else junk.apply(dst.name, m.flags)
        nm = _add_message(conn, dst, uid, modseq, flags, m.internal_date, m.size, m.path)
        _copy_aux(conn, m.id, nm.id, move=True)
        _tombstone(conn, m.id, modseq)
        fx.changes.append(MessageAdded(dst.id, uid))
        result.append((m.uid, uid))
    fx.changes.append(Expunged(src.id, tuple(m.uid for m in msgs)))
    return result


def save_parsed(conn: sqlite3.Connection, fx: Effects, items: dict[int, str]) -> None:
    for mid, data in items.items():
        conn.execute(
            "INSERT OR REPLACE INTO message_parsed(message_id, data) "
            "SELECT id, ? FROM messages WHERE id = ? AND expunged = 0",
            (data, mid),
        )


def set_annotations(
    conn: sqlite3.Connection,
    fx: Effects,
    mailbox_id: int,
    entries: Sequence[tuple[str, bytes | None, bool]],
) -> None:
    # RFC 5464 §4.3: NIL removes an entry; all entries of one SETMETADATA change together.
    if mailbox_id:
        _mailbox_by_id(conn, mailbox_id)
    for name, value, is_text in entries:
        if value is None:
            conn.execute(
                "DELETE FROM annotations WHERE mailbox_id = ? AND name = ?", (mailbox_id, name)
            )
        else:
            conn.execute(
                "INSERT INTO annotations(mailbox_id, name, value, is_text) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(mailbox_id, name) DO UPDATE SET value = excluded.value, "
                "is_text = excluded.is_text",
                (mailbox_id, name, value, int(is_text)),
            )


def set_credentials(conn: sqlite3.Connection, fx: Effects, text: str) -> None:
    conn.execute(
        "INSERT INTO credentials(id, text) VALUES (1, ?) "
        "ON CONFLICT(id) DO UPDATE SET text = excluded.text",
        (text,),
    )


def unlink_quietly(account_dir: Path, rels: Sequence[str]) -> None:
    for rel in rels:
        if rel:
            try:
                os.unlink(account_dir / rel)
            except FileNotFoundError:
                pass
