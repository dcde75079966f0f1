"""APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315 §3), MULTIAPPEND (RFC 3502), BINARY
literal8 (RFC 3516 §4.4), UTF8 (RFC 6855 §4), and REPLACE (RFC 8508).

Implementation notes:
- The message arrives as a literal that the receiver has already bounded (``max_literal``; larger
  ones got NO [TOOBIG] before we read them, RFC 7889). ``Account.deliver`` makes it durable (file,
  directory and row) before we answer, and indexes its text for SEARCH.
- MULTIAPPEND should be all or nothing (RFC 3502 §6.3.11): everything is checked before the first
  message is stored, the messages are stored in order, and if one of them still fails, the ones
  already stored are expunged again before the NO.
- The account quota (``Account.quota``) is checked first: NO [OVERQUOTA] (RFC 9208 §4.2).
- Appending to the selected mailbox produces an EXISTS through the change feed at the command
  boundary (RFC 9051 §6.3.12 "SHOULD").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mox.imap import commands as c
from mox.imap.commands import compact_set
from mox.imap.errors import ImapBad, ImapNo
from mox.imap.responses import Untagged
from mox.imapserver.common import Ok, code, get_mailbox
from mox.imapserver.mailboxes import canonical_name
from mox.store import Account, Message

if TYPE_CHECKING:
    from mox.imapserver.session import Session


def _check(s: Session, account: Account, messages: tuple[c.AppendMessage, ...]) -> None:
    for m in messages:
        if not m.data:
            raise ImapNo("empty message", code("CANNOT"))
        if b"\x00" in m.data and not m.binary:
            raise ImapBad("NUL in message, use a literal8 (BINARY)")  # RFC 3516 §4.4
    if account.quota is not None:
        total = sum(len(m.data) for m in messages)
        if account.disk_usage() + total > account.quota:
            raise ImapNo("over quota", code("OVERQUOTA"))  # RFC 9208 §4.2


async def append(s: Session, cmd: c.Append) -> Ok | None:
    account = s.require_account()
    mb = get_mailbox(account, canonical_name(cmd.mailbox), trycreate=True)  # RFC 9051 §6.3.12
    messages = cmd.messages
    _check(s, account, messages)
    # One after the other: RFC 3502 §6.3.11 wants the UIDs in the order of the messages.
    stored: list[Message] = []
    failed: list[Exception] = []
    for m in messages:
        try:
            stored.append(
                await account.deliver(mb.name, m.data, flags=m.flags, internal_date=m.internal_date)
            )
        except Exception as e:
            failed.append(e)
            break
    if failed:
        if stored:
            # RFC 3502 §6.3.11: none of the messages may stay when one fails.
            uids = [m.uid for m in stored]
            await account.store_flags(mb.id, uids, "add", ["\\Deleted"])
            await account.expunge(mb.id, uids)
        raise failed[0]
    uids = [m.uid for m in stored]
    return Ok("APPEND completed", code("APPENDUID", mb.uidvalidity, compact_set(uids)))


async def replace(s: Session, cmd: c.Replace) -> Ok | None:
    # RFC 8508 §3: append the new message, expunge the old one, in one transaction.
    sel = s.require_selected()
    if sel.readonly:
        raise ImapNo("mailbox is read-only (EXAMINE)", code("CANNOT"))
    account = s.require_account()
    targets = sel.resolve(cmd.seqset, uid=cmd.uid)
    if not targets or targets[0][1] in sel.expunged:
        raise ImapNo("no such message", code("NONEXISTENT"))
    mb = get_mailbox(account, canonical_name(cmd.mailbox), trycreate=True)
    _check(s, account, (cmd.message,))
    m = cmd.message
    msg = await account.deliver(
        mb.name,
        m.data,
        flags=m.flags,
        internal_date=m.internal_date,
        replace=(sel.mailbox_id, targets[0][1]),
    )
    # RFC 8508 §3.4: APPENDUID in an untagged OK, before the EXPUNGE of the old message.
    s.send(Untagged("OK", "replaced", code("APPENDUID", mb.uidvalidity, msg.uid)))
    return None
