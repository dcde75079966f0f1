"""APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315 §3).

Implementation notes:
- The message arrives as a literal that the receiver has already bounded (``max_literal``; larger
  ones got NO [TOOBIG] before we read them, RFC 7889). ``Account.deliver`` makes it durable (file,
  directory and row) before we answer.
- Appending to the selected mailbox produces an EXISTS through the change feed at the command
  boundary (RFC 9051 §6.3.12 "SHOULD").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mox.imap import commands as c
from mox.imap.errors import ImapNo
from mox.imapserver.common import Ok, code, get_mailbox
from mox.imapserver.mailboxes import canonical_name

if TYPE_CHECKING:
    from mox.imapserver.session import Session


async def append(s: Session, cmd: c.Append) -> Ok | None:
    account = s.require_account()
    mb = get_mailbox(account, canonical_name(cmd.mailbox), trycreate=True)  # RFC 9051 §6.3.12
    if not cmd.message:
        raise ImapNo("empty message", code("CANNOT"))
    msg = await account.deliver(
        mb.name, cmd.message, flags=cmd.flags, internal_date=cmd.internal_date
    )
    return Ok("APPEND completed", code("APPENDUID", mb.uidvalidity, msg.uid))
