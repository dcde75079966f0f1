"""mox.store: per-account message store, SQLite (WAL) index plus one immutable file per message.

See docs/internal-api.md for the contract; RFC 9051 (IMAP4rev2) and RFC 7162 (CONDSTORE) for
the semantics of UIDs, UIDVALIDITY, flags and modseqs.
"""

from mox.store.account import Account
from mox.store.changes import Change, Expunged, FlagsChanged, MailboxesChanged, MessageAdded
from mox.store.models import (
    Mailbox,
    MailboxExists,
    MailboxInvalid,
    MailboxNotFound,
    MailboxStatus,
    MailboxView,
    Message,
    StoreError,
)
from mox.store.store import Store

__all__ = [
    "Account",
    "Change",
    "Expunged",
    "FlagsChanged",
    "Mailbox",
    "MailboxExists",
    "MailboxInvalid",
    "MailboxNotFound",
    "MailboxStatus",
    "MailboxView",
    "MailboxesChanged",
    "Message",
    "MessageAdded",
    "Store",
    "StoreError",
]
