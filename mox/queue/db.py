"""The queue's SQLite database (WAL, synchronous=FULL) and message files.

One row per recipient (as mox's queue.Msg); recipients of one submission share `base_id` and one
message file. A row is only inserted after its file is written and fsynced, so a crash never
leaves a queued row without its message. Finished rows move to `retired` (kept for `mox queue`
listings and DSN matching).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from mox.store.db import Migration, connect, migrate

__all__ = ["COLUMNS", "QueueMsg", "open_db"]


@dataclass(frozen=True, slots=True)
class QueueMsg:
    id: int
    base_id: str
    account: str
    mail_from: str
    rcpt: str
    rcpt_domain: str
    path: str
    size: int
    smtputf8: bool
    has_8bit: bool
    requiretls: bool | None  # None: default policy; False: "TLS-Required: No" (RFC 8689 §5)
    dsn_ret: str | None
    dsn_envid: str | None
    notify: str | None  # comma-separated NOTIFY values, RFC 3461 §4.1
    orcpt: str | None
    queued: str
    next_attempt: str
    attempts: int
    max_attempts: int
    last_error: str
    hold: bool
    delay_dsn_sent: bool
    transport: str | None
    # As mox's Msg.DialedIPs: per host, the IPs dialed so far, as JSON (mox/queue/dialed.py).
    dialed_ips: str = ""


COLUMNS = (
    "id, base_id, account, mail_from, rcpt, rcpt_domain, path, size, smtputf8, has_8bit, "
    "requiretls, dsn_ret, dsn_envid, notify, orcpt, queued, next_attempt, attempts, "
    "max_attempts, last_error, hold, delay_dsn_sent, transport, dialed_ips"
)


def msg_from_row(row: tuple[Any, ...]) -> QueueMsg:
    r = list(row)
    return QueueMsg(
        id=r[0],
        base_id=r[1],
        account=r[2],
        mail_from=r[3],
        rcpt=r[4],
        rcpt_domain=r[5],
        path=r[6],
        size=r[7],
        smtputf8=bool(r[8]),
        has_8bit=bool(r[9]),
        requiretls=None if r[10] is None else bool(r[10]),
        dsn_ret=r[11],
        dsn_envid=r[12],
        notify=r[13],
        orcpt=r[14],
        queued=r[15],
        next_attempt=r[16],
        attempts=r[17],
        max_attempts=r[18],
        last_error=r[19],
        hold=bool(r[20]),
        delay_dsn_sent=bool(r[21]),
        transport=r[22],
        dialed_ips=r[23] or "",
    )


def _m1(db: sqlite_utils.Database) -> None:
    columns: dict[str, Any] = {
        "id": int,
        "base_id": str,
        "account": str,
        "mail_from": str,
        "rcpt": str,
        "rcpt_domain": str,
        "path": str,
        "size": int,
        "smtputf8": int,
        "has_8bit": int,
        "requiretls": int,
        "dsn_ret": str,
        "dsn_envid": str,
        "notify": str,
        "orcpt": str,
        "queued": str,
        "next_attempt": str,
        "attempts": int,
        "max_attempts": int,
        "last_error": str,
        "hold": int,
        "delay_dsn_sent": int,
        "transport": str,
    }
    db.table("msgs").create(columns, pk="id")
    db.table("msgs").create_index(["next_attempt"])
    db.table("retired").create({**columns, "result": str, "retired_at": str}, pk="id")
    db.table("retired").create_index(["retired_at"])
    # RFC 8460 §4.4: per policy domain, counts of successful and failed TLS sessions per day.
    db.table("tls_results").create(
        {"day": str, "policy_domain": str, "policy_type": str, "result": str, "count": int},
        pk=("day", "policy_domain", "policy_type", "result"),
    )


def _m2(db: sqlite_utils.Database) -> None:
    # Per-account suppression list (as mox's queue/suppression.go): recipients with hard bounces.
    db.table("suppressions").create(
        {
            "id": int,
            "created": str,
            "account": str,
            "base_address": str,
            "original_address": str,
            "manual": int,
            "reason": str,
        },
        pk="id",
        not_null={"account", "base_address", "original_address", "created"},
    )
    db.table("suppressions").create_index(["account", "base_address"], unique=True)
    # Outgoing webhook events not yet delivered, retried with backoff, also after a restart.
    db.table("webhooks").create(
        {
            "id": int,
            "account": str,
            "kind": str,
            "payload": str,
            "attempts": int,
            "next_attempt": str,
            "last_error": str,
            "queued": str,
        },
        pk="id",
        not_null={"account", "kind", "payload", "attempts", "next_attempt", "queued"},
    )
    # RFC 8460 §3: one report per policy domain and day; remembered so a restart does not
    # send it twice.
    db.table("tlsrpt_sent").create(
        {"day": str, "policy_domain": str, "sent": str}, pk=("day", "policy_domain")
    )


def _m3(db: sqlite_utils.Database) -> None:
    # As mox's Msg.DialedIPs: the IPs dialed per host, so the next attempt starts with the other
    # address family (mox/queue/dialed.py). Old rows have none.
    for table in ("msgs", "retired"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN dialed_ips TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Migration] = [_m1, _m2, _m3]


def open_db(path: Path) -> sqlite3.Connection:
    """The queue database, with the store's pragmas and migration mechanism."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn, MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


def write_file(path: Path, data: bytes) -> None:
    """Write a message file and make it and its directory entry durable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
