"""IMAP errors by audience (RFC 9051 §7.1): raised anywhere, rendered once at the command boundary.

- ``ImapNo``: the command failed for an operational reason (tagged ``NO``), e.g. a missing mailbox.
- ``ImapBad``: the command was malformed or not allowed (tagged ``BAD``, or untagged when no tag).
- ``ImapBye``: the server ends the connection (untagged ``BYE``).

Each carries an optional response code (RFC 9051 §7.1, RFC 5530) such as ``TRYCREATE``. The text
goes to the client, so keep it generic; details belong in the log.

``LocalProtocolError`` is raised when *our* code misuses the sans-IO connection (h11 style), never
for client input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mox.imap.responses import ResponseCode


class ImapError(Exception):
    """Base class of the errors rendered as an IMAP status response."""

    status: str = "BAD"

    def __init__(self, text: str, code: ResponseCode | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class ImapNo(ImapError):
    """Tagged ``NO``: operational failure (RFC 9051 §7.1.2)."""

    status = "NO"


class ImapBad(ImapError):
    """Tagged or untagged ``BAD``: protocol-level error (RFC 9051 §7.1.3)."""

    status = "BAD"


class ImapBye(ImapError):
    """Untagged ``BYE``: the server closes the connection (RFC 9051 §7.1.5)."""

    status = "BYE"


class LocalProtocolError(Exception):
    """The server code used the sans-IO connection wrongly (a bug on our side)."""
