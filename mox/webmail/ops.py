"""Message operations shared by the webmail and the web API (as mox's webops package).

Both go through the account's store, so IMAP sessions see the change as from another IMAP
client (untagged EXPUNGE, or FETCH and EXPUNGE for a move, RFC 9051 §7.4.1, RFC 6851 §4.4), and
the junk filter trains from the flags a move sets (mox.junk.train), as on an IMAP MOVE.
"""

from __future__ import annotations

from collections.abc import Iterable

from mox.store import Account
from mox.store.junkflags import DEFAULT_JUNK_FLAG_RULES

__all__ = ["expunge_messages", "move_messages"]


async def move_messages(
    acc: Account,
    mailbox_id: int,
    uids: Iterable[int],
    dest_name: str,
    *,
    copy: bool = False,
) -> list[tuple[int, int]]:
    """Move (RFC 6851) or copy (RFC 9051 §6.4.7) to an existing mailbox: (old uid, new uid)
    pairs. The copies get $Junk/$NotJunk by the destination's name with the same rules as IMAP
    MOVE/COPY (mox.imapserver.messages, mox's AutomaticJunkFlags); StoreError (MailboxNotFound)
    when the destination does not exist."""
    fn = acc.copy_messages if copy else acc.move_messages
    return await fn(mailbox_id, list(uids), dest_name, junk_flags=DEFAULT_JUNK_FLAG_RULES)


async def expunge_messages(acc: Account, mailbox_id: int, uids: Iterable[int]) -> list[int]:
    """Remove messages for good: \\Deleted, then UID EXPUNGE of just these (RFC 9051 §6.4.3,
    RFC 4315 §2.1), so other messages marked \\Deleted stay. Returns the UIDs removed."""
    uidlist = list(uids)
    await acc.store_flags(mailbox_id, uidlist, "add", ["\\Deleted"])
    return await acc.expunge(mailbox_id, uidlist)
