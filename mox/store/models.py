"""Values of the message store: mailboxes, messages, errors, and the rules for names and flags.

Mailbox names follow RFC 9051 §5.1 (hierarchy separator "/", "INBOX" case-insensitive) and flags
RFC 9051 §2.3.2 (system flags) with keywords stored lowercased, as the Go mox does.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "MAX_MAILBOX_NAME",
    "SYSTEM_FLAGS",
    "Mailbox",
    "MailboxExists",
    "MailboxInvalid",
    "MailboxNotFound",
    "MailboxStatus",
    "MailboxView",
    "Message",
    "StoreError",
    "check_mailbox_name",
    "normalize_flag",
    "normalize_flags",
    "normalize_mailbox_name",
]

INBOX = "Inbox"
MAX_MAILBOX_NAME = 200

# RFC 9051 §2.3.2: the system flags a client may store; \Recent is gone in IMAP4rev2.
SYSTEM_FLAGS: dict[str, str] = {
    f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
}


class StoreError(Exception):
    """Base class of all errors raised by the store."""


class MailboxExists(StoreError):
    """The mailbox (or the target of a rename) already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"mailbox {name!r} already exists")
        self.name = name


class MailboxNotFound(StoreError):
    """No mailbox by that name or id."""

    def __init__(self, name: str) -> None:
        super().__init__(f"mailbox {name!r} not found")
        self.name = name


class MailboxInvalid(StoreError):
    """The mailbox name is not acceptable, or the operation is not allowed on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    special_use: str | None
    subscribed: bool
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    path: str  # relative to the account directory: "msg/<2 hex>/<random hex>"
    save_date: datetime | None = None  # RFC 8514; None for messages stored before SAVEDATE


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    messages: int
    unseen: int
    size: int
    uidnext: int
    uidvalidity: int
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MailboxView:
    """A mailbox as a SELECT starts it: UIDs ascending, keywords in use, highest modseq, all from
    one snapshot (Account.mailbox_view)."""

    uids: list[int]
    keywords: frozenset[str]
    highest_modseq: int


def normalize_mailbox_name(name: str) -> str:
    """NFC-normalise and map any case of "INBOX" (and "INBOX/...") to the stored "Inbox"."""
    name = unicodedata.normalize("NFC", name)
    # RFC 9051 §5.1: "INBOX" is case-insensitive; so is its use as a prefix of inferiors.
    if name.upper() == "INBOX":
        return INBOX
    if name[:6].upper() == "INBOX/":
        return INBOX + name[5:]
    return name


def check_mailbox_name(name: str) -> str:
    """Normalise and validate a mailbox name; raise MailboxInvalid with the reason."""
    name = normalize_mailbox_name(name)
    if not name:
        raise MailboxInvalid("empty mailbox name")
    if len(name) > MAX_MAILBOX_NAME:
        raise MailboxInvalid(f"mailbox name longer than {MAX_MAILBOX_NAME} characters")
    if name.startswith("/") or name.endswith("/"):
        raise MailboxInvalid("mailbox name starts or ends with the hierarchy separator '/'")
    if "//" in name:
        raise MailboxInvalid("mailbox name has an empty hierarchy level ('//')")
    for c in name:
        if unicodedata.category(c) == "Cc":
            raise MailboxInvalid("mailbox name contains a control character")
    # RFC 9051 §6.3.9: "%" and "*" are LIST wildcards, a mailbox named with them could not be listed
    # on its own; the Go mox rejects them too.
    if "%" in name or "*" in name:
        raise MailboxInvalid("mailbox name contains a wildcard character ('%' or '*')")
    return name


def normalize_flag(flag: str) -> str:
    """Canonical case for system flags (RFC 9051 §2.3.2), lowercase for keywords."""
    lower = flag.lower()
    if lower.startswith("\\"):
        canon = SYSTEM_FLAGS.get(lower)
        if canon is None:
            raise StoreError(f"unknown system flag {flag!r}")
        return canon
    if not flag:
        raise StoreError("empty flag")
    return lower


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """Normalise an iterable of flags (a lone string is rejected, it is almost always a bug)."""
    if isinstance(flags, str):
        raise TypeError("flags must be an iterable of strings, not a string")
    return frozenset(normalize_flag(f) for f in flags)
