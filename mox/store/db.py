"""The per-account SQLite database: connections, schema, migrations, and row decoding.

One database per account in WAL mode with synchronous=FULL, so a committed transaction survives a
power loss (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
UIDVALIDITY/UIDNEXT follow RFC 9051 §2.3.1.1, modseqs RFC 7162 §3.1.1.

The schema is created and evolved by MIGRATIONS, applied in order at open, each in its own
transaction together with the bump of meta.schema_version, so a migration runs exactly once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from mox.store.models import INBOX, Mailbox, Message

log = logging.getLogger(__name__)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DEFAULT_MAILBOXES",
    "MIGRATIONS",
    "connect",
    "decode_flags",
    "encode_flags",
    "get_meta",
    "mailbox_from_row",
    "message_from_row",
    "migrate",
    "set_meta",
]

BUSY_TIMEOUT_MS = 10_000

# Name and RFC 6154 special-use attribute of the mailboxes of a new account.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Archive", "\\Archive"),
    ("Trash", "\\Trash"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
)

MAILBOX_SELECT = (
    "SELECT m.id, m.name, m.uidvalidity, m.uidnext, m.special_use, m.highest_modseq, "
    "s.name IS NOT NULL AS subscribed "
    "FROM mailboxes m LEFT JOIN subscriptions s ON s.name = m.name"
)
MESSAGE_COLUMNS = "id, mailbox_id, uid, modseq, flags, internal_date, size, path, savedate"


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection needs.

    isolation_level=None: no implicit transactions; writers use explicit BEGIN IMMEDIATE/COMMIT.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: the WAL is fsynced at every commit, a returned commit is durable.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def get_meta(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise KeyError(key)
    return int(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def encode_flags(flags: frozenset[str]) -> str:
    return json.dumps(sorted(flags))


def decode_flags(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


def mailbox_from_row(row: tuple[Any, ...]) -> Mailbox:
    return Mailbox(
        id=row[0],
        name=row[1],
        uidvalidity=row[2],
        uidnext=row[3],
        special_use=row[4],
        highest_modseq=row[5],
        subscribed=bool(row[6]),
    )


def message_from_row(row: tuple[Any, ...]) -> Message:
    return Message(
        id=row[0],
        mailbox_id=row[1],
        uid=row[2],
        modseq=row[3],
        flags=decode_flags(row[4]),
        internal_date=datetime.fromisoformat(row[5]),
        size=row[6],
        path=row[7],
        save_date=None if row[8] is None else datetime.fromisoformat(row[8]),
    )


# Migrations. Each takes the write connection wrapped by sqlite-utils, inside a transaction.


def _m1_initial(db: sqlite_utils.Database) -> None:
    db.table("mailboxes").create(
        {
            "id": int,
            "name": str,
            "uidvalidity": int,
            "uidnext": int,
            "special_use": str,
            "highest_modseq": int,
        },
        pk="id",
        not_null={"name", "uidvalidity", "uidnext", "highest_modseq"},
    )
    db.table("mailboxes").create_index(["name"], unique=True)
    db.table("messages").create(
        {
            "id": int,
            "mailbox_id": int,
            "uid": int,
            "modseq": int,
            "flags": str,
            "internal_date": str,
            "size": int,
            "path": str,
            "expunged": int,
        },
        pk="id",
        foreign_keys=[("mailbox_id", "mailboxes", "id")],
        not_null={"mailbox_id", "uid", "modseq", "flags", "internal_date", "size", "path"},
        defaults={"expunged": 0},
    )
    # RFC 9051 §2.3.1.1: a UID identifies one message within a mailbox (and its UIDVALIDITY).
    db.table("messages").create_index(["mailbox_id", "uid"], unique=True)
    db.table("messages").create_index(["mailbox_id", "modseq"])
    db.table("subscriptions").create({"name": str}, pk="name")
    db.table("credentials").create({"id": int, "text": str}, pk="id", not_null={"text"})

    conn = db.conn
    set_meta(conn, "modseq", 1)
    uidvalidity = 1
    for name, special_use in DEFAULT_MAILBOXES:
        conn.execute(
            "INSERT INTO mailboxes(name, uidvalidity, uidnext, special_use, highest_modseq) "
            "VALUES (?, ?, 1, ?, 1)",
            (name, uidvalidity, special_use),
        )
        conn.execute("INSERT INTO subscriptions(name) VALUES (?)", (name,))
        uidvalidity += 1
    # RFC 9051 §2.3.1.1: a mailbox re-created under an old name must get a new UIDVALIDITY, so it
    # comes from a counter of the account, never reused.
    set_meta(conn, "next_uidvalidity", uidvalidity)


def _m2_smtp_meta(db: sqlite_utils.Database) -> None:
    # Delivery metadata (envelope, remote IP, TLS, DSN parameters) as JSON per message, for the
    # queue, the junk filter and reputation; and what this account sent, for outgoing limits
    # (mox's store.Outgoing and store.Recipient).
    db.table("messages").add_column("meta", str)
    db.table("outgoing").create(
        {"id": int, "submitted": str, "recipients": int}, pk="id", not_null={"submitted"}
    )
    db.table("outgoing").create_index(["submitted"])
    db.table("recipients_sent").create(
        {"address": str, "first_sent": str, "last_sent": str},
        pk="address",
        not_null={"first_sent", "last_sent"},
    )
    db.table("recipients_sent").create_index(["first_sent"])


def _m3_imap(db: sqlite_utils.Database) -> None:
    # What the IMAP extensions need (reference §1.5, §1.8):
    # - savedate: when the message was saved to its mailbox (RFC 8514 SAVEDATE); NULL for messages
    #   from before this migration (SEARCH SAVEDBEFORE etc. then use the internal date).
    # - indexed: 1 when the message's text is in the full-text index (messages delivered before
    #   this migration are searched by reading their file).
    # - message_parsed: the IMAP layer's cache of ENVELOPE/BODYSTRUCTURE/PREVIEW, opaque to the
    #   store, so a FETCH does not re-parse the message.
    # - fts: full-text index (SQLite FTS5, trigram tokenizer, so a phrase query is a substring
    #   match) of the case-folded decoded header values and text parts; rowid = messages.id.
    # - annotations: IMAP METADATA (RFC 5464) entries; mailbox_id 0 for server entries.
    db.table("messages").add_column("savedate", str)
    db.table("messages").add_column("indexed", int, not_null_default=0)
    conn = db.conn
    conn.execute(
        "CREATE TABLE message_parsed (message_id INTEGER PRIMARY KEY "
        "REFERENCES messages(id) ON DELETE CASCADE, data TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE fts USING fts5(headers, body, tokenize='trigram case_sensitive 1')"
    )
    conn.execute(
        "CREATE TABLE annotations (mailbox_id INTEGER NOT NULL, name TEXT NOT NULL, "
        "value BLOB NOT NULL, is_text INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (mailbox_id, name))"
    )


def _m4_live_index(db: sqlite_utils.Database) -> None:
    # What a SELECT needs of every message (the UIDs in order and the flags, for the keywords in
    # use), answered from one covering index of the live messages instead of the table rows
    # (bench/PROFILE.md: SELECT of 100,000 messages).
    db.conn.execute(
        "CREATE INDEX idx_messages_live ON messages(mailbox_id, uid, flags) WHERE expunged = 0"
    )
    # The few messages not (yet) in the full-text index, which SEARCH BODY/TEXT must read.
    db.conn.execute(
        "CREATE INDEX idx_messages_unindexed ON messages(mailbox_id, uid) "
        "WHERE indexed = 0 AND expunged = 0"
    )


def _m5_fts_detail_none(db: sqlite_utils.Database) -> None:
    # The full-text index without token positions (detail=none): substring search is a GLOB
    # looked up in the index and checked against the stored text (mox.store.fulltext), and
    # building the index costs about half (bench/PROFILE.md). The indexed text is copied over.
    # Done once, at the first open after the upgrade; it takes a while for a big account
    # (100,000 messages of 2 KiB, the file not in the page cache: ~1 minute), so it is logged.
    conn = db.conn
    rows = conn.execute("SELECT count(*) FROM fts").fetchone()[0]
    if rows:
        log.info("rebuilding the full-text index, once after an upgrade", extra={"messages": rows})
    t0 = time.monotonic()
    conn.execute(
        "CREATE VIRTUAL TABLE fts_new USING fts5(headers, body, "
        "tokenize='trigram case_sensitive 1', detail=none)"
    )
    conn.execute("INSERT INTO fts_new(rowid, headers, body) SELECT rowid, headers, body FROM fts")
    conn.execute("DROP TABLE fts")
    conn.execute("ALTER TABLE fts_new RENAME TO fts")
    if rows:
        log.info(
            "full-text index rebuilt",
            extra={"messages": rows, "seconds": round(time.monotonic() - t0, 1)},
        )


Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[Migration] = [
    _m1_initial,
    _m2_smtp_meta,
    _m3_imap,
    _m4_live_index,
    _m5_fts_detail_none,
]


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply the migrations not yet applied, each atomically; return the schema version."""
    if migrations is None:
        migrations = MIGRATIONS
    db = sqlite_utils.Database(conn, execute_plugins=False)
    with db.atomic():
        if not db.table("meta").exists():
            db.table("meta").create({"key": str, "value": int}, pk="key", not_null={"value"})
            set_meta(conn, "schema_version", 0)
    version = get_meta(conn, "schema_version")
    if version > len(migrations):
        raise RuntimeError(
            f"database schema version {version} is newer than this mox ({len(migrations)})"
        )
    while version < len(migrations):
        with db.atomic():
            # Re-read inside the write transaction: another process may have migrated meanwhile.
            version = get_meta(conn, "schema_version")
            if version >= len(migrations):
                break
            migrations[version](db)
            version += 1
            set_meta(conn, "schema_version", version)
    return version
