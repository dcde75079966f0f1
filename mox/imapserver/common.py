"""Small shared pieces of the IMAP server: handler result, errors, capabilities, helpers.

Implementation notes:
- The timeouts are read from this module at use, so tests can shorten them with monkeypatch.
- Capabilities list only what works; a later change adds the rest of the Go mox's list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mox.imap.abnf import MONTHS
from mox.imap.errors import ImapNo
from mox.imap.responses import Atom, ResponseCode
from mox.store import Account, Mailbox

log = logging.getLogger("mox.imapserver")

# RFC 9051 §7.2.2; only what works. The dynamic ones (STARTTLS, AUTH=PLAIN, LOGINDISABLED) are
# added per connection.
BASE_CAPABILITIES: Final = (
    "IMAP4rev2",
    "IMAP4rev1",
    "LITERAL+",  # RFC 7888
    "IDLE",  # RFC 2177
    "SASL-IR",  # RFC 4959
    "UNSELECT",  # RFC 3691
    "UIDPLUS",  # RFC 4315
    "ENABLE",  # RFC 5161
    "ID",  # RFC 2971
    "NAMESPACE",  # RFC 2342
    "SPECIAL-USE",  # RFC 6154
)
# ENABLE-able extensions (RFC 5161 §3.1: only those advertised).
ENABLEABLE: Final = frozenset({"IMAP4REV2"})

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
