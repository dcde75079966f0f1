"""One account's message store: reads on the event loop, writes through a single writer thread.

Durability (SPEC §5): deliver() hands the message to the writer thread. The writer takes every
pending operation at once and applies them in one transaction (each in a savepoint, so one failing
operation does not fail the others); a delivery writes its message file there, without fsync.
Before the one commit (group commit, synchronous=FULL) the writer fsyncs the batch's new files
together (files.sync_files) and each distinct message directory once. A message is visible only
once both its file and its row are durable; a crash at any moment leaves at worst an orphan file
without a row. Messages over WRITER_FILE_MAX bytes are written, fsynced and their text extracted
in a worker thread before they reach the writer, so they do not hold up the other deliveries of a
batch. Listeners run on the event loop after the commit.

Full-text index: a delivered message is stored with indexed = 0 and indexed after its commit by
the writer, from its file (big ones: from the text extracted with the file write), when the writer
has nothing else to do, in transactions that do not fsync (losing one in a crash only leaves its
messages unindexed). Indexing waits up to INDEX_DELAY for more messages, so that one transaction
indexes many: the trigram index (FTS5) costs ~0.6 ms per 4 KiB of text in a transaction of 50
messages but ~2.5 ms for a message indexed alone (a new segment and its merges per transaction),
and in the delivery's own transaction it was most of the writer's work (bench/PROFILE.md). Under a
steady write load an index transaction still runs every INDEX_EVERY_BATCHES write batches, so the
backlog cannot starve. Until indexed, SEARCH reads those messages (``unindexed_uids``), so results
are the same; unindexed rows found at open (older mail, a crash) are indexed the same way.

Mailbox and message semantics: RFC 9051 (IMAP4rev2) §2.3.1.1, §6.3, §6.4; RFC 7162 modseqs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from mox.store import files, fulltext, prefetch, txn
from mox.store.changes import Change, Listener
from mox.store.db import (
    MAILBOX_SELECT,
    MESSAGE_COLUMNS,
    connect,
    decode_flags,
    mailbox_from_row,
    message_from_row,
    migrate,
)
from mox.store.junkflags import JunkFlagRules
from mox.store.models import (
    Mailbox,
    MailboxNotFound,
    MailboxStatus,
    MailboxView,
    Message,
    StoreError,
    check_mailbox_name,
    normalize_flags,
    normalize_mailbox_name,
)
from mox.store.txn import Effects

if TYPE_CHECKING:
    from mox.auth.password import Credentials

__all__ = ["Account"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Background indexing, see the module docstring.
INDEX_DELAY = 0.5  # seconds a delivered message may wait for others to be indexed with
INDEX_BATCH_CHARS = 256 * 1024  # text per background index transaction
INDEX_LOADED_CHARS = 64 * 1024  # the same while writes come in batches (concurrent writers)
INDEX_BUSY_CHARS = 32 * 1024  # the same when writes wait for it (~25 ms of trigram inserts)
INDEX_QUEUE_MAX_CHARS = 64 * 1024 * 1024  # beyond this, texts are re-read from the files later
INDEX_SCAN_BATCH = 64  # unindexed messages read from their files per transaction, at most
INDEX_EVERY_BATCHES = 8  # under a steady write load, one index transaction per this many batches
# Messages up to this size are written by the writer thread in their batch (module docstring):
# no thread hop per message, and one journal commit for all of a batch's files (files.sync_files).
# Bigger ones are written in a worker thread, as their text extraction takes milliseconds.
WRITER_FILE_MAX = 256 * 1024
# At open, at most this much of the index a SELECT scans is read ahead (_prefetch_live_index):
# ~430 pages of 4 KiB per 100,000 live messages.
PREFETCH_MAX_BYTES = 16 * 1024 * 1024

# "\\Seen" as it appears in the JSON flags column (db.encode_flags): only that flag can produce
# this text, since a quote is followed by a backslash only at the start of a system flag.
_SEEN_JSON = json.dumps("\\Seen")
TxnFn = Callable[[sqlite3.Connection, Effects], T]


@dataclass(slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection, Effects], object]
    future: asyncio.Future[Any]
    fsync_dir: Path | None = None
    own_file: str | None = None  # a delivered file to remove again if the operation fails


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    value: object
    changes: list[Change]


class Account:
    """The mail of one account; get it from Store.account()."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.dir = path
        created = [p for p in (path.parent, path, path / "msg") if not p.exists()]
        (path / "msg").mkdir(mode=0o700, parents=True, exist_ok=True)
        for p in created:
            files.fsync_dir(p.parent)  # a new directory is durable once its parent's entry is
        dbpath = path / "index.db"
        self._wconn = connect(dbpath)
        try:
            self.schema_version = migrate(self._wconn)
            self._rconn = connect(dbpath)
        except BaseException:
            self._wconn.close()
            raise
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mox-store-{name}")
        self._pending: list[_Op] = []
        self._drainer: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._closed = False
        self._closing = False
        # Background indexing (module docstring): texts waiting, and whether rows with
        # indexed = 0 may exist that only their files can index.
        self._index_queue: deque[tuple[int, str, str]] = deque()
        self._index_queue_chars = 0
        self._index_scan = self._has_unindexed()
        self._index_due: float | None = None  # when the waiting deliveries are to be indexed
        self._index_waiting = 0  # deliveries waiting for it
        self._index_timer: asyncio.TimerHandle | None = None
        self._batches_since_index = 0
        self._last_batch_ops = 0  # writes in the last batch: more than one, deliveries under load
        self._prefetch_live_index(dbpath)
        # Counters for tests and metrics: batches handed to the writer, transactions committed.
        self.batch_count = 0
        self.commit_count = 0
        self.index_count = 0  # background index transactions started
        # Set from the config by the server: storage quota in bytes (None: unlimited).
        self.quota: int | None = None

    def __repr__(self) -> str:
        return f"<Account {self.name!r} {str(self.dir)!r}>"

    # Reads: on the event loop thread, from the read connection; WAL gives them a consistent
    # snapshot of the last commit without blocking on the writer.

    def list_mailboxes(self) -> list[Mailbox]:
        rows = self._rconn.execute(f"{MAILBOX_SELECT} ORDER BY m.name").fetchall()
        return [mailbox_from_row(r) for r in rows]

    def get_mailbox(self, name: str) -> Mailbox | None:
        name = normalize_mailbox_name(name)
        row = self._rconn.execute(f"{MAILBOX_SELECT} WHERE m.name = ?", (name,)).fetchone()
        return None if row is None else mailbox_from_row(row)

    def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        row = self._rconn.execute(f"{MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
        return None if row is None else mailbox_from_row(row)

    def list_messages(self, mailbox_id: int) -> list[Message]:
        rows = self._rconn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND expunged = 0 "  # noqa: S608
            "ORDER BY uid",
            (mailbox_id,),
        ).fetchall()
        return [message_from_row(r) for r in rows]

    def get_messages(self, mailbox_id: int, uids: Iterable[int]) -> list[Message]:
        rows = self._rconn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND expunged = 0 "  # noqa: S608
            "AND uid IN (SELECT value FROM json_each(?)) ORDER BY uid",
            (mailbox_id, txn.uids_json(list(uids))),
        ).fetchall()
        return [message_from_row(r) for r in rows]

    def mailbox_view(self, mailbox_id: int) -> MailboxView:
        """What a SELECT needs, from one snapshot: the UIDs in order, the keywords in use and the
        highest modseq; without loading every message (bench/PROFILE.md)."""
        live = "FROM messages INDEXED BY idx_messages_live WHERE mailbox_id = :mb AND expunged = 0"
        # One statement, so one snapshot: the modseq belongs to exactly these UIDs. Messages
        # without flags (usual for new mail) cannot add keywords, so they skip the DISTINCT.
        agg = self._rconn.execute(
            "SELECT (SELECT highest_modseq FROM mailboxes WHERE id = :mb), count(*), "  # noqa: S608
            f"(SELECT uid {live} ORDER BY uid LIMIT 1), "
            f"(SELECT uid {live} ORDER BY uid DESC LIMIT 1), json_group_array(uid), "
            f"json_group_array(DISTINCT flags) FILTER (WHERE flags <> '[]') {live}",
            {"mb": mailbox_id},
        ).fetchone()
        if agg[0] is None:
            raise MailboxNotFound(f"#{mailbox_id}")
        count, lowest, highest = agg[1], agg[2], agg[3]
        uids: list[int]
        if count and highest - lowest + 1 == count:
            # UIDs are unique in a mailbox (RFC 9051 §2.3.1.1; the unique index): count of them
            # between lowest and highest are all of them. A mailbox without gaps (nothing
            # expunged or moved out) skips decoding the JSON list (~7 ms per 100,000).
            uids = list(range(lowest, highest + 1))
        else:
            uids = json.loads(agg[4])
            uids.sort()  # already in index order; cheap when sorted
        keywords = {
            f for text in json.loads(agg[5]) for f in decode_flags(text) if not f.startswith("\\")
        }
        return MailboxView(uids, frozenset(keywords), int(agg[0]))

    def first_unseen_uid(self, mailbox_id: int) -> int | None:
        """The lowest UID without \\Seen (IMAP4rev1's UNSEEN response code)."""
        row = self._rconn.execute(
            "SELECT uid FROM messages INDEXED BY idx_messages_live "
            "WHERE mailbox_id = ? AND expunged = 0 AND instr(flags, ?) = 0 ORDER BY uid LIMIT 1",
            (mailbox_id, _SEEN_JSON),
        ).fetchone()
        return None if row is None else int(row[0])

    def message_path(self, msg: Message) -> Path:
        return self.dir / msg.path

    def read_message(self, msg: Message) -> bytes:
        """The exact bytes delivered; StoreError if the message was expunged meanwhile."""
        if not msg.path:
            raise StoreError(f"message uid {msg.uid} was expunged")
        try:
            return self.message_path(msg).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"message uid {msg.uid} was expunged") from None

    def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        mb = self.get_mailbox_by_id(mailbox_id)
        if mb is None:
            raise MailboxNotFound(f"#{mailbox_id}")
        row = self._rconn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(instr(flags, ?) = 0), 0) "
            "FROM messages WHERE mailbox_id = ? AND expunged = 0",
            (_SEEN_JSON, mailbox_id),
        ).fetchone()
        return MailboxStatus(
            messages=row[0],
            unseen=row[2],
            size=row[1],
            uidnext=mb.uidnext,
            uidvalidity=mb.uidvalidity,
            highest_modseq=mb.highest_modseq,
        )

    def subscriptions(self) -> list[str]:
        rows = self._rconn.execute("SELECT name FROM subscriptions ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def message_meta(self, msg: Message) -> dict[str, Any]:
        """The delivery metadata stored with a message ({} when none)."""
        row = self._rconn.execute("SELECT meta FROM messages WHERE id = ?", (msg.id,)).fetchone()
        if row is None or row[0] is None:
            return {}
        value = json.loads(row[0])
        return value if isinstance(value, dict) else {}

    def outgoing_since(self, since: datetime) -> tuple[int, int]:
        """(messages submitted, first-time recipients) since a moment, for sending limits."""
        when = _utc(since).isoformat()
        msgs = self._rconn.execute(
            "SELECT count(*) FROM outgoing WHERE submitted >= ?", (when,)
        ).fetchone()[0]
        first = self._rconn.execute(
            "SELECT count(*) FROM recipients_sent WHERE first_sent >= ?", (when,)
        ).fetchone()[0]
        return int(msgs), int(first)

    def has_sent_to(self, address: str) -> bool:
        row = self._rconn.execute(
            "SELECT 1 FROM recipients_sent WHERE address = ?", (address.lower(),)
        ).fetchone()
        return row is not None

    async def record_outgoing(self, recipients: Iterable[str]) -> None:
        """Count one submitted message and remember its recipients (lower-cased)."""
        rcpts = sorted({r.lower() for r in recipients})
        when = datetime.now(UTC).isoformat()
        await self._submit(lambda c, fx: txn.record_outgoing(c, fx, rcpts, when))

    def disk_usage(self) -> int:
        """Bytes of all messages of the account (RFC 9208 STORAGE usage)."""
        row = self._rconn.execute(
            "SELECT coalesce(sum(size), 0) FROM messages WHERE expunged = 0"
        ).fetchone()
        return int(row[0])

    def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[Message], list[int]]:
        """Messages changed (or added) after modseq, and UIDs expunged after it (RFC 7162 §3.1.4,
        §3.2.5.2): tombstones keep the modseq of their expunge."""
        rows = self._rconn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE mailbox_id = ? AND expunged = 0 "  # noqa: S608
            "AND modseq > ? ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()
        gone = self._rconn.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? AND expunged = 1 AND modseq > ? "
            "ORDER BY uid",
            (mailbox_id, modseq),
        ).fetchall()
        return [message_from_row(r) for r in rows], [int(r[0]) for r in gone]

    def fts_search(self, mailbox_id: int, needle: str, *, text: bool) -> set[int] | None:
        """UIDs of indexed messages whose body (text: also headers) contains needle,
        case-insensitively; None when needle is empty (everything matches). Messages in
        ``unindexed_uids`` must be checked by reading them."""
        cond = fulltext.match_expression(needle, text=text)
        if cond is None:
            return None
        kind, sql, value = cond
        if kind == "index":
            # The index lookup runs once, in a subquery; joined, SQLite ran it once per message
            # row (bench/PROFILE.md: 3.3 s against 1.4 ms on 5,000 messages). The unary "+"
            # keeps SQLite from scanning the mailbox's index and testing each row against the
            # list: the matches are looked up by id instead (100,000 messages: 30 ms -> 6 ms).
            query = (
                "SELECT uid FROM messages WHERE +mailbox_id = :mailbox AND +expunged = 0 "  # noqa: S608
                f"AND id IN ({sql})"
            )
        else:
            query = (
                "SELECT m.uid FROM fts JOIN messages m ON m.id = fts.rowid "  # noqa: S608
                f"WHERE m.mailbox_id = :mailbox AND m.expunged = 0 AND {sql}"
            )
        rows = self._rconn.execute(query, {"mailbox": mailbox_id, "needle": value}).fetchall()
        return {int(r[0]) for r in rows}

    def unindexed_uids(self, mailbox_id: int) -> set[int]:
        """Messages not in the full-text index (stored before it existed)."""
        rows = self._rconn.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? AND expunged = 0 AND indexed = 0",
            (mailbox_id,),
        ).fetchall()
        return {int(r[0]) for r in rows}

    def get_parsed(self, message_ids: Iterable[int]) -> dict[int, str]:
        """The cached parse results (opaque text saved by save_parsed) of messages that have one."""
        rows = self._rconn.execute(
            "SELECT message_id, data FROM message_parsed "
            "WHERE message_id IN (SELECT value FROM json_each(?))",
            (txn.uids_json(list(message_ids)),),
        ).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    def get_annotations(self, mailbox_id: int) -> dict[str, tuple[bytes, bool]]:
        """METADATA entries of a mailbox (0: the server), name -> (value, is_text)."""
        rows = self._rconn.execute(
            "SELECT name, value, is_text FROM annotations WHERE mailbox_id = ? ORDER BY name",
            (mailbox_id,),
        ).fetchall()
        return {str(r[0]): (bytes(r[1]), bool(r[2])) for r in rows}

    def get_credentials(self) -> Credentials | None:
        from mox.auth.password import Credentials

        row = self._rconn.execute("SELECT text FROM credentials WHERE id = 1").fetchone()
        return None if row is None else Credentials.from_text(row[0])

    # Writes.

    async def deliver(
        self,
        mailbox_name: str,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
        meta: Mapping[str, Any] | None = None,
        replace: tuple[int, int] | None = None,
        create: bool = False,
    ) -> Message:
        """Add a message; durable (file, directory and row) when this returns.

        `meta` is JSON-able delivery metadata (envelope, DSN parameters, remote IP, TLS), kept
        with the message for the queue, reputation and the junk filter. `replace` is a
        (mailbox id, uid) expunged in the same transaction (RFC 8508 REPLACE). With `create`, a
        mailbox that does not exist is created (with its parents) in the same transaction;
        without, that is MailboxNotFound. The message's text goes into the full-text index in
        the same transaction.
        """
        self._check_open()
        name = normalize_mailbox_name(mailbox_name)
        nflags = normalize_flags(flags)
        date = _utc(internal_date)
        meta_text = None if meta is None else json.dumps(meta, sort_keys=True)
        data = bytes(data)
        rel = files.new_message_path()
        path = self.dir / rel
        # Small messages: the writer writes the file within the batch (fn). Big ones: a worker
        # thread writes it, fsynced, before the batch (WRITER_FILE_MAX).
        big = len(data) > WRITER_FILE_MAX
        text: tuple[str, str] | None = None  # big ones: for the index (module docstring)
        if big:

            def write() -> tuple[str, str]:
                files.write_message(path, data)
                return fulltext.extract_text(data)

            text = await asyncio.to_thread(write)

        def fn(conn: sqlite3.Connection, fx: Effects) -> Message:
            msg = txn.deliver(
                conn, fx, name, rel, len(data), nflags, date, meta_text, replace, create
            )
            if not big:
                # Not fsynced here: _run_batch fsyncs the batch's files before the commit.
                fx.sync.append(files.create_message(path, data))
                fx.created.append(rel)
            return msg

        msg = await self._submit(fn, fsync_dir=path.parent, own_file=rel if big else None)
        if text is not None:
            self._queue_index(msg.id, text)
        else:
            self._index_scan = True
            self._index_later()
        return msg

    async def create_mailbox(self, name: str, special_use: str | None = None) -> Mailbox:
        name = check_mailbox_name(name)
        return await self._submit(lambda c, fx: txn.create_mailbox(c, fx, name, special_use))

    async def delete_mailbox(self, name: str) -> None:
        name = normalize_mailbox_name(name)
        await self._submit(lambda c, fx: txn.delete_mailbox(c, fx, name))

    async def rename_mailbox(self, old: str, new: str) -> None:
        old = normalize_mailbox_name(old)
        new = check_mailbox_name(new)
        await self._submit(lambda c, fx: txn.rename_mailbox(c, fx, old, new))

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        name = check_mailbox_name(name)
        await self._submit(lambda c, fx: txn.set_subscribed(c, fx, name, subscribed))

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        op: Literal["set", "add", "remove"],
        flags: Iterable[str],
    ) -> list[Message]:
        """Change flags; returns the messages that changed, with their new flags and modseq."""
        if op not in ("set", "add", "remove"):
            raise ValueError(f"unknown flag operation {op!r}")
        uidlist = list(uids)
        nflags = normalize_flags(flags)
        return await self._submit(
            lambda c, fx: txn.store_flags(c, fx, mailbox_id, uidlist, op, nflags)
        )

    async def store_flags_conditional(
        self,
        mailbox_id: int,
        uids: Iterable[int],
        op: Literal["set", "add", "remove"],
        flags: Iterable[str],
        unchanged_since: int,
    ) -> tuple[list[Message], list[int]]:
        """store_flags, leaving messages with a modseq above unchanged_since alone; returns the
        changed messages and the UIDs that were not changed for that reason (RFC 7162 §3.1.3)."""
        if op not in ("set", "add", "remove"):
            raise ValueError(f"unknown flag operation {op!r}")
        uidlist = list(uids)
        nflags = normalize_flags(flags)
        modified: list[int] = []

        def fn(c: sqlite3.Connection, fx: Effects) -> list[Message]:
            modified.clear()
            return txn.store_flags(
                c, fx, mailbox_id, uidlist, op, nflags, unchanged_since, modified
            )

        changed = await self._submit(fn)
        return changed, sorted(modified)

    async def expunge(self, mailbox_id: int, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the \\Deleted messages (among uids if given); their files go after the commit."""
        uidlist = None if uids is None else list(uids)
        return await self._submit(lambda c, fx: txn.expunge(c, fx, mailbox_id, uidlist))

    async def copy_messages(
        self,
        src_mailbox_id: int,
        uids: Iterable[int],
        dst_mailbox_name: str,
        *,
        junk_flags: JunkFlagRules | None = None,
    ) -> list[tuple[int, int]]:
        uidlist = list(uids)
        dst = normalize_mailbox_name(dst_mailbox_name)
        junk = junk_flags
        pairs = await self._submit(
            lambda c, fx: txn.copy_messages(c, fx, self.dir, src_mailbox_id, uidlist, dst, junk)
        )
        self._after_copy()
        return pairs

    async def move_messages(
        self,
        src_mailbox_id: int,
        uids: Iterable[int],
        dst_mailbox_name: str,
        *,
        junk_flags: JunkFlagRules | None = None,
    ) -> list[tuple[int, int]]:
        """Move atomically (RFC 6851): (src uid, new uid) pairs; the sources become tombstones.

        With junk_flags, the copies get $Junk/$NotJunk by the destination's name (as the Go mox's
        AutomaticJunkFlags; also for copy_messages)."""
        uidlist = list(uids)
        dst = normalize_mailbox_name(dst_mailbox_name)
        junk = junk_flags
        pairs = await self._submit(
            lambda c, fx: txn.move_messages(c, fx, src_mailbox_id, uidlist, dst, junk)
        )
        self._after_copy()
        return pairs

    def _after_copy(self) -> None:
        # A copy of a message still waiting for the background indexer has indexed = 0 and no
        # queued text: let the indexer look for such rows (one cheap query when there are none).
        self._index_scan = True
        self._kick()

    async def save_parsed(self, items: Mapping[int, str]) -> None:
        """Cache parse results by message id (ignored for messages that are gone)."""
        if items:
            data = dict(items)
            await self._submit(lambda c, fx: txn.save_parsed(c, fx, data))

    async def set_annotations(
        self, mailbox_id: int, entries: Iterable[tuple[str, bytes | None, bool]]
    ) -> None:
        """Set (or with value None remove) METADATA entries (RFC 5464 §4.3) in one transaction."""
        items = list(entries)
        await self._submit(lambda c, fx: txn.set_annotations(c, fx, mailbox_id, items))

    async def set_credentials(self, creds: Credentials) -> None:
        text = creds.to_text()
        await self._submit(lambda c, fx: txn.set_credentials(c, fx, text))

    # Change feed.

    def add_listener(self, cb: Listener) -> None:
        self._listeners.append(cb)

    def remove_listener(self, cb: Listener) -> None:
        try:
            self._listeners.remove(cb)
        except ValueError:
            pass

    # Lifecycle.

    def close(self) -> None:
        """Close now: fail operations not yet started, wait for a running batch, close the DB."""
        if self._closed:
            return
        self._closed = True
        if self._index_timer is not None:
            self._index_timer.cancel()
        pending, self._pending = self._pending, []
        for op in pending:
            if not op.future.done():
                op.future.set_exception(StoreError("account closed"))
            if op.own_file:
                txn.unlink_quietly(self.dir, [op.own_file])
        self._executor.shutdown(wait=True)
        self._rconn.close()
        self._wconn.close()

    async def aclose(self) -> None:
        """Finish all pending writes, then close (background indexing stops after its current
        transaction and continues at the next open)."""
        self._closing = True
        while self._drainer is not None and not self._drainer.done():
            await asyncio.wait([self._drainer])
        self.close()

    async def index_backlog(self) -> None:
        """Wait until every message is in the full-text index (tests, bench set-up)."""
        while not (self._closed or self._closing) and (self._index_queue or self._index_scan):
            self._index_due = None  # now
            self._kick()
            if self._drainer is not None:
                await asyncio.wait([self._drainer])

    def _prefetch_live_index(self, dbpath: Path) -> None:
        """Start reading the index a SELECT scans (idx_messages_live) into the OS page cache, on
        the writer thread; a cold file otherwise costs one disk read per index page in the first
        SELECT (mox.store.prefetch)."""
        row = self._rconn.execute(
            "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master "
            "WHERE type = 'index' AND name = 'idx_messages_live'"
        ).fetchone()
        if row is None or not row[0]:
            return
        root, page_size = int(row[0]), int(row[1])

        def run() -> None:
            # Our connections stay open until close(), which waits for this (executor shutdown),
            # so the descriptor found stays valid; see mox.store.prefetch for why not our own.
            fd = prefetch.sqlite_fd(dbpath)
            if fd is None:
                return
            try:
                prefetch.prefetch_btree(fd, root, page_size, PREFETCH_MAX_BYTES // page_size)
            except OSError as e:
                log.debug("index prefetch failed, account %s: %s", self.name, e)

        self._executor.submit(run)

    # Background indexing.

    def _has_unindexed(self) -> bool:
        row = self._rconn.execute(
            "SELECT 1 FROM messages WHERE indexed = 0 AND expunged = 0 LIMIT 1"
        ).fetchone()
        return row is not None

    def _queue_index(self, msg_id: int, text: tuple[str, str]) -> None:
        size = len(text[0]) + len(text[1])
        if self._index_queue_chars + size > INDEX_QUEUE_MAX_CHARS:
            self._index_scan = True  # bounded memory: read from the file later
        else:
            self._index_queue.append((msg_id, text[0], text[1]))
            self._index_queue_chars += size
        self._index_later()

    def _index_later(self) -> None:
        """A delivered message waits for indexing: within INDEX_DELAY, or sooner when enough
        others wait with it (module docstring)."""
        if self._index_due is None:
            self._index_due = time.monotonic() + INDEX_DELAY
        self._index_waiting += 1
        self._kick()

    def _index_wait(self) -> float:
        """Seconds the background indexer should still wait for more messages (0: index now)."""
        if self._index_due is None or self._closing:
            return 0.0
        if self._index_waiting >= INDEX_SCAN_BATCH or self._index_queue_chars >= INDEX_BATCH_CHARS:
            return 0.0
        return max(0.0, self._index_due - time.monotonic())

    def _index_timer_fired(self) -> None:
        self._index_timer = None
        self._kick()

    def _kick(self) -> None:
        if self._closed or (self._drainer is not None and not self._drainer.done()):
            return
        loop = asyncio.get_running_loop()
        self._drainer = loop.create_task(self._drain(), name=f"mox-store-writer-{self.name}")

    def _take_index_items(self, budget: int) -> list[tuple[int, str, str]]:
        items: list[tuple[int, str, str]] = []
        chars = 0
        while self._index_queue and (not items or chars < budget):
            item = self._index_queue.popleft()
            n = len(item[1]) + len(item[2])
            self._index_queue_chars -= n
            chars += n
            items.append(item)
        return items

    def _run_index_batch(self, items: list[tuple[int, str, str]], scan: bool, budget: int) -> bool:
        """On the writer thread: index queued texts, or (scan) unindexed messages from their
        files. Returns whether a scan should (still) run: more unindexed rows, or a queued
        message that was moved away meanwhile (its new row has indexed = 0)."""
        conn = self._wconn
        more = False
        # Not durable on its own (no WAL fsync): a lost index row only means a message that
        # SEARCH reads; the next synchronous commit makes it durable too.
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if scan:
                    rows = conn.execute(
                        "SELECT id, path FROM messages WHERE indexed = 0 AND expunged = 0 LIMIT ?",
                        (INDEX_SCAN_BATCH,),
                    ).fetchall()
                    chars = 0
                    for mid, rel in rows:
                        if chars >= budget:
                            break  # the rest at the next turn
                        try:
                            data = (self.dir / rel).read_bytes()
                        except FileNotFoundError:
                            # Gone (removed behind the store's back): indexed as empty, so it
                            # is not read again at every turn and cannot hold up the rows
                            # after it (the scan takes the first INDEX_SCAN_BATCH).
                            log.warning("message file missing, indexed as empty: %s", rel)
                            items.append((int(mid), "", ""))
                            continue
                        except OSError:
                            log.warning("message file unreadable for indexing: %s", rel)
                            continue
                        headers, body = fulltext.extract_text(data)
                        items.append((int(mid), headers, body))
                        chars += len(headers) + len(body)
                rows_ok = []
                for mid, headers, body in items:
                    cur = conn.execute(
                        "UPDATE messages SET indexed = 1 WHERE id = ? AND expunged = 0 "
                        "AND indexed = 0",
                        (mid,),
                    )
                    if cur.rowcount == 1:
                        rows_ok.append((mid, headers, body))
                txn.insert_fts_rows(conn, rows_ok)
                conn.execute("COMMIT")
                more = bool(rows_ok) if scan else len(rows_ok) < len(items)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception:
            log.exception("full-text indexing failed, account %s", self.name)
        finally:
            conn.execute("PRAGMA synchronous = FULL")
        return more

    # The writer.

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"account {self.name!r} is closed")

    async def _submit(
        self, fn: TxnFn[T], *, fsync_dir: Path | None = None, own_file: str | None = None
    ) -> T:
        if self._closed:
            if own_file:
                txn.unlink_quietly(self.dir, [own_file])
            raise StoreError(f"account {self.name!r} is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Op(fn, fut, fsync_dir, own_file))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain(), name=f"mox-store-writer-{self.name}")
        return cast(T, await fut)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            backlog = bool(self._index_queue or self._index_scan) and not self._closing
            # Background indexing when the writer is idle, or now and then under a steady
            # write load, once the waiting messages are due (module docstring).
            turn = backlog and (
                not self._pending or self._batches_since_index >= INDEX_EVERY_BATCHES
            )
            if turn:
                wait = self._index_wait()
                if wait > 0:
                    turn = False
                    if not self._pending and self._index_timer is None:
                        self._index_timer = loop.call_later(wait, self._index_timer_fired)
            if not turn and not self._pending:
                return
            if turn:
                self._index_due = None
                self._index_waiting = 0
                self._batches_since_index = 0
                self.index_count += 1
                # Shorter turns while deliveries wait or keep coming, as they wait behind them.
                if self._pending:
                    budget = INDEX_BUSY_CHARS
                elif self._last_batch_ops > 1:
                    budget = INDEX_LOADED_CHARS
                else:
                    budget = INDEX_BATCH_CHARS
                items = self._take_index_items(budget)
                scan = not items and self._index_scan
                more = await loop.run_in_executor(
                    self._executor, self._run_index_batch, items, scan, budget
                )
                if scan or more:
                    self._index_scan = more
                continue
            batch, self._pending = self._pending, []
            ops: list[_Op] = []
            for op in batch:
                if op.future.done():  # the caller was cancelled before we started
                    if op.own_file:
                        txn.unlink_quietly(self.dir, [op.own_file])
                else:
                    ops.append(op)
            if not ops:
                continue
            self.batch_count += 1
            self._batches_since_index += 1
            self._last_batch_ops = len(ops)
            try:
                outcomes = await loop.run_in_executor(self._executor, self._run_batch, ops)
            except BaseException as e:
                # Cancelled (loop shutdown) or the executor is gone: the callers must not hang.
                # When cancelled, the batch may still commit on the writer thread.
                for op in ops:
                    if not op.future.done():
                        op.future.set_exception(StoreError(f"store write interrupted: {e!r}"))
                raise
            changes: list[Change] = []
            for o in outcomes:
                changes.extend(o.changes)
            if changes:
                self._notify(changes)
            for op, o in zip(ops, outcomes, strict=True):
                if op.future.done():
                    continue
                if o.ok:
                    op.future.set_result(o.value)
                else:
                    op.future.set_exception(cast(BaseException, o.value))

    def _notify(self, changes: list[Change]) -> None:
        for cb in list(self._listeners):
            try:
                cb(list(changes))
            except Exception:
                log.exception("store change listener failed")

    def _run_batch(self, ops: list[_Op]) -> list[_Outcome]:
        """On the writer thread: one transaction; new files and directories fsynced; one commit."""
        conn = self._wconn
        effects: list[Effects] = []
        outcomes: list[_Outcome] = []
        new_files: list[int] = []
        dirs: set[Path] = set()
        try:
            # Always a durable commit, whatever a background index transaction left set.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    fx = Effects()
                    effects.append(fx)
                    conn.execute("SAVEPOINT op")
                    try:
                        value = op.fn(conn, fx)
                    except Exception as e:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                        txn.unlink_quietly(self.dir, fx.created)
                        if op.own_file:
                            txn.unlink_quietly(self.dir, [op.own_file])
                        outcomes.append(_Outcome(False, e, []))
                    else:
                        conn.execute("RELEASE op")
                        outcomes.append(_Outcome(True, value, fx.changes))
                        new_files.extend(fx.sync)
                        if op.fsync_dir is not None:
                            dirs.add(op.fsync_dir)
                # The rows commit only once their files are durable: the files written above,
                # then each distinct directory once for the whole batch.
                files.sync_files(new_files)
                for d in sorted(dirs):
                    files.fsync_dir(d)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as e:
            log.exception("store transaction failed, account %s", self.name)
            for fx in effects:
                txn.unlink_quietly(self.dir, fx.created)
            txn.unlink_quietly(self.dir, [op.own_file for op in ops if op.own_file])
            return [_Outcome(False, e, []) for _ in ops]
        finally:
            for fx in effects:
                for fd in fx.sync:
                    os.close(fd)
        self.commit_count += 1
        for fx in effects:
            # Only now, with the rows gone for good, the files may go.
            txn.unlink_quietly(self.dir, fx.unlink_after_commit)
        return outcomes


def _utc(d: datetime | None) -> datetime:
    if d is None:
        return datetime.now(UTC)
    if d.tzinfo is None:
        return d.replace(tzinfo=UTC)
    return d.astimezone(UTC)
