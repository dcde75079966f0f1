"""Per-account suppression list, as mox's queue/suppression.go.

A recipient that hard-bounces is added to the sending account's list, and later submissions to
it are refused at RCPT (the submitter learns at once instead of from yet another DSN, and the
remote is not bothered again). Addresses are compared by their "base address" as mox does:
local part up to the first `+` or `-`, dots removed, lower case.

Which failures add an address (as mox's isImmedateBlock): reply codes 521, 550, 551, 553 and
556 (RFC 5321 §4.2.3, RFC 7504 §3), or any 5xx with enhanced code (RFC 3463 §3.3–3.9) 5.1.1,
5.1.2, 5.1.3, 5.1.6, 5.2.1 or 5.7.1. Other permanent failures add it once the two previous
messages to the same address failed too (three failures in a row).

All functions take the queue's database connection and run on the queue's thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mox.smtp.address import AddressError, parse_mailbox

__all__ = [
    "Suppression",
    "SuppressionError",
    "add",
    "base_address",
    "immediate_block",
    "list_suppressions",
    "lookup",
    "normalize",
    "process_failure",
    "remove",
]

IMMEDIATE_CODES = {521, 550, 551, 553, 556}
IMMEDIATE_ENHANCED = {"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.2.1", "5.7.1"}
_COLUMNS = "id, created, account, base_address, original_address, manual, reason"


class SuppressionError(ValueError):
    """Bad address, or an add/remove that cannot be done; the text says why."""


@dataclass(frozen=True, slots=True)
class Suppression:
    id: int
    created: str
    account: str
    base_address: str
    original_address: str
    manual: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        """As mox's webapi.Suppression."""
        return {
            "ID": self.id,
            "Created": self.created,
            "Account": self.account,
            "BaseAddress": self.base_address,
            "OriginalAddress": self.original_address,
            "Manual": self.manual,
            "Reason": self.reason,
        }


def _row(r: tuple[Any, ...]) -> Suppression:
    return Suppression(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6] or "")


def normalize(address: str) -> str:
    """The address as a path would carry it; SuppressionError when it is not one."""
    try:
        addr = parse_mailbox(address.strip())
    except AddressError as exc:
        raise SuppressionError(f"bad address {address!r}: {exc}") from None
    return str(addr)


def base_address(address: str) -> str:
    """mox's baseAddress: `First.Last+tag@Example.org` → `firstlast@example.org`."""
    local, _, domain = normalize(address).rpartition("@")
    local = local.split("+", 1)[0].split("-", 1)[0].replace(".", "").lower()
    return f"{local}@{domain.lower()}"


def immediate_block(code: int, enhanced: str) -> bool:
    """Whether one failure is enough to list the address (as mox)."""
    if code in IMMEDIATE_CODES:
        return True
    return code // 100 == 5 and enhanced in IMMEDIATE_ENHANCED


def lookup(conn: sqlite3.Connection, account: str, address: str) -> Suppression | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM suppressions WHERE account = ? AND base_address = ?",  # noqa: S608
        (account, base_address(address)),
    ).fetchone()
    return None if row is None else _row(row)


def list_suppressions(conn: sqlite3.Connection, account: str | None) -> list[Suppression]:
    if account is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM suppressions ORDER BY id").fetchall()  # noqa: S608
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM suppressions WHERE account = ? ORDER BY id",  # noqa: S608
            (account,),
        ).fetchall()
    return [_row(r) for r in rows]


def add(
    conn: sqlite3.Connection,
    account: str,
    address: str,
    *,
    manual: bool,
    reason: str,
    now: datetime,
) -> Suppression:
    original = normalize(address)
    base = base_address(original)
    try:
        cur = conn.execute(
            "INSERT INTO suppressions(created, account, base_address, original_address, manual, "
            "reason) VALUES (?,?,?,?,?,?)",
            (now.isoformat(timespec="seconds"), account, base, original, int(manual), reason),
        )
    except sqlite3.IntegrityError:
        raise SuppressionError(f"{base} is already on the suppression list of {account}") from None
    return Suppression(
        int(cur.lastrowid or 0),
        now.isoformat(timespec="seconds"),
        account,
        base,
        original,
        manual,
        reason,
    )


def remove(conn: sqlite3.Connection, account: str, address: str) -> bool:
    cur = conn.execute(
        "DELETE FROM suppressions WHERE account = ? AND base_address = ?",
        (account, base_address(address)),
    )
    return cur.rowcount > 0


def process_failure(
    conn: sqlite3.Connection,
    *,
    account: str,
    msg_id: int,
    rcpt: str,
    code: int,
    enhanced: str,
    source: str,
    now: datetime,
) -> bool:
    """A permanent delivery failure for `rcpt`: add it to the list when mox would. True when
    it was added now."""
    if not account or code // 100 != 5:
        return False
    try:
        if lookup(conn, account, rcpt) is not None:
            return False
    except SuppressionError:
        return False  # not an address we can list (e.g. an address literal)
    if immediate_block(code, enhanced):
        reason = f"delivery failure from {source} with smtp code {code}, enhanced code {enhanced!r}"
    else:
        # Two earlier messages to this address failed too (three in a row with this one).
        rows = conn.execute(
            "SELECT result FROM retired WHERE rcpt = ? AND account = ? AND id != ? "
            "ORDER BY retired_at DESC, id DESC LIMIT 2",
            (rcpt, account, msg_id),
        ).fetchall()
        if len(rows) < 2 or any(r[0] != "failed" for r in rows):
            return False
        reason = f"delivery failure from {source} and three consecutive failures"
    try:
        add(conn, account, rcpt, manual=False, reason=reason, now=now)
    except SuppressionError:
        return False
    return True
