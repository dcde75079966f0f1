"""The change feed: what one committed transaction changed, for IDLE/NOTIFY-style push.

Modseqs are those of RFC 7162 (CONDSTORE); listeners run on the event loop after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Change", "Expunged", "FlagsChanged", "Listener", "MailboxesChanged", "MessageAdded"]


@dataclass(frozen=True, slots=True)
class MessageAdded:
    mailbox_id: int
    uid: int


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    mailbox_id: int
    uid: int
    flags: frozenset[str]
    modseq: int


@dataclass(frozen=True, slots=True)
class Expunged:
    mailbox_id: int
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MailboxesChanged:
    """Mailboxes were created, deleted, renamed, or (un)subscribed."""


Change = MessageAdded | FlagsChanged | Expunged | MailboxesChanged
Listener = Callable[[list[Change]], None]
