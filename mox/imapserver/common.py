"""Small shared pieces of the IMAP server: handler result, errors, capabilities, helpers.

Implementation notes:
- The timeouts are read from this module at use, so tests can shorten them with monkeypatch.
- Capabilities: the Go mox's list in its order (reference §1.5), then what we add beyond mox (SORT,
  THREAD, COMPRESS=DEFLATE). The dynamic ones are added per connection (see Session.capabilities).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mox.imap.abnf import MONTHS
from mox.imap.errors import ImapBye, ImapNo
from mox.imap.responses import Atom, ResponseCode
from mox.store import Account, Mailbox

log = logging.getLogger("mox.imapserver")

# RFC 9051 §7.2.2. "{appendlimit}" is replaced by the server's literal limit (RFC 7889 §2: an
# upper bound we really enforce; the Go mox announces 2^63-1). The -PLUS mechanisms are only
# announced on TLS connections with a channel binding (RFC 5802 §6).
CAPABILITIES: Final = (
    "IMAP4rev2",  # RFC 9051
    "IMAP4rev1",  # RFC 3501
    "ENABLE",  # RFC 5161
    "LITERAL+",  # RFC 7888
    "IDLE",  # RFC 2177
    "SASL-IR",  # RFC 4959
    "BINARY",  # RFC 3516
    "UNSELECT",  # RFC 3691
    "UIDPLUS",  # RFC 4315
    "ESEARCH",  # RFC 4731
    "SEARCHRES",  # RFC 5182
    "MOVE",  # RFC 6851
    "UTF8=ACCEPT",  # RFC 6855
    "LIST-EXTENDED",  # RFC 5258
    "SPECIAL-USE",  # RFC 6154
    "CREATE-SPECIAL-USE",  # RFC 6154
    "LIST-STATUS",  # RFC 5819
    "AUTH=SCRAM-SHA-256-PLUS",  # RFC 7677, RFC 5802
    "AUTH=SCRAM-SHA-256",
    "AUTH=SCRAM-SHA-1-PLUS",
    "AUTH=SCRAM-SHA-1",
    "AUTH=CRAM-MD5",  # RFC 2195
    "ID",  # RFC 2971
    "APPENDLIMIT={appendlimit}",  # RFC 7889
    "CONDSTORE",  # RFC 7162
    "QRESYNC",  # RFC 7162
    "STATUS=SIZE",  # RFC 8438
    "QUOTA",  # RFC 9208
    "QUOTA=RES-STORAGE",  # RFC 9208
    "METADATA",  # RFC 5464
    "SAVEDATE",  # RFC 8514
    "WITHIN",  # RFC 5032
    "NAMESPACE",  # RFC 2342
    "LIST-METADATA",  # RFC 9590
    "MULTIAPPEND",  # RFC 3502
    "REPLACE",  # RFC 8508
    "PREVIEW",  # RFC 8970
    "INPROGRESS",  # RFC 9585
    "MULTISEARCH",  # RFC 7377
    "NOTIFY",  # RFC 5465
    "UIDONLY",  # RFC 9586
    # Beyond the Go mox:
    "SORT",  # RFC 5256
    "THREAD=REFERENCES",  # RFC 5256
    "THREAD=ORDEREDSUBJECT",  # RFC 5256
    "COMPRESS=DEFLATE",  # RFC 4978
)
# ENABLE-able extensions (RFC 5161 §3.1: only those advertised), as the Go mox.
ENABLEABLE: Final = frozenset(
    {"IMAP4REV2", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC", "METADATA", "UIDONLY"}
)
ENABLED_NAMES: Final = {"IMAP4REV2": "IMAP4rev2"}

SEPARATOR: Final = "/"  # hierarchy separator, as the Go mox (reference §1.5)

# Idle timeouts (RFC 9051 §5.4: at least 30 minutes once authenticated).
TIMEOUT_UNAUTHENTICATED: Final = 60.0
TIMEOUT_AUTHENTICATED: Final = 30 * 60.0
MAX_FAILED_LOGINS: Final = 5


@dataclass(frozen=True, slots=True)
class Ok:
    """A handler's tagged OK: text and optional response code (default text "<CMD> completed")."""

    text: str = ""
    code: ResponseCode | None = None


class ConnectionClosed(Exception):
    """The connection ended (EOF, BYE sent, transport error): stop the session."""


def code(name: str, *args: int | str) -> ResponseCode:
    """A response code with number or atom arguments."""
    return ResponseCode(name, tuple(a if isinstance(a, int) else Atom(a) for a in args))


def internal_date(d: datetime) -> str:
    """date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" with a space-padded day (RFC 9051 §9)."""
    offset = d.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (
        f"{d.day:2d}-{MONTHS[d.month - 1]}-{d.year:04d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


def get_mailbox(account: Account, name: str, *, trycreate: bool = False) -> Mailbox:
    """An existing mailbox, or NO [NONEXISTENT] (NO [TRYCREATE] for APPEND/COPY targets)."""
    mb = account.get_mailbox(name)
    if mb is None:
        # RFC 9051 §6.3.12 and §6.4.7: TRYCREATE when the target mailbox does not exist.
        raise ImapNo("no such mailbox", code("TRYCREATE" if trycreate else "NONEXISTENT"))
    return mb


async def wait_input_or_change(readable: Awaitable[object], changed: asyncio.Event) -> bool:
    """Until the client sends something (True) or another session commits a change (IDLE,
    NOTIFY); ImapBye after the authenticated idle timeout (RFC 9051 §5.4)."""
    reader = asyncio.ensure_future(readable)
    waiter = asyncio.ensure_future(changed.wait())
    try:
        done, _ = await asyncio.wait(
            {reader, waiter}, timeout=TIMEOUT_AUTHENTICATED, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (reader, waiter):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if not done:
        raise ImapBye("autologout; idle for too long")
    return reader in done
