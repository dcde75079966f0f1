"""mox.imap: the sans-IO IMAP protocol core (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1).

No asyncio and no sockets here: ``ImapConnection`` takes bytes and gives typed events, and renders
typed responses to bytes. ``mox.imapserver`` drives it. Modules:

- ``abnf``: character classes of RFC 9051 §9;
- ``receiver``: resumable splitting of input into commands with literals and limits;
- ``cursor``, ``parser``, ``parser_selected``: commands to ``commands`` dataclasses;
- ``responses``: response types and serialisation; ``utf7``: modified UTF-7 mailbox names;
- ``state``: the state table; ``connection``: the sans-IO connection; ``errors``:
  ImapNo/ImapBad/ImapBye.
"""

from mox.imap.connection import CLOSED, ClientLine, ImapConnection, InvalidCommand
from mox.imap.errors import ImapBad, ImapBye, ImapError, ImapNo, LocalProtocolError
from mox.imap.receiver import NEED_DATA, NeedContinuation
from mox.imap.state import State

__all__ = [
    "CLOSED",
    "NEED_DATA",
    "ClientLine",
    "ImapBad",
    "ImapBye",
    "ImapConnection",
    "ImapError",
    "ImapNo",
    "InvalidCommand",
    "LocalProtocolError",
    "NeedContinuation",
    "State",
]
