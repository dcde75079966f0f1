"""Automatic junk flags: copying or moving a message into a mailbox sets $Junk or $NotJunk.

As the Go mox (reference §1.3 "AutomaticJunkFlags", its Message.JunkFlagsForMailbox): a message
that lands in a mailbox whose lower-cased name matches the junk pattern gets $Junk (and loses
$NotJunk); in a neutral mailbox both are cleared; in a not-junk mailbox (or, when no not-junk
pattern is set, in any other mailbox) it gets $NotJunk and loses $Junk. The junk filter learns
from these flags. Keywords are stored lower-cased (RFC 9051 §2.3.2 keywords are case-insensitive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_JUNK_FLAG_RULES", "JUNK", "NOTJUNK", "JunkFlagRules"]

JUNK: Final = "$junk"
NOTJUNK: Final = "$notjunk"


@dataclass(frozen=True, slots=True)
class JunkFlagRules:
    """Mailbox name patterns (matched with re.search on the lower-cased name)."""

    junk: re.Pattern[str] | None = field(default_factory=lambda: re.compile("^(junk|spam)"))
    neutral: re.Pattern[str] | None = field(
        default_factory=lambda: re.compile(
            "^(inbox|introbox|neutral|postmaster|dmarc|tlsrpt|rejects)"
        )
    )
    notjunk: re.Pattern[str] | None = None

    def apply(self, mailbox: str, flags: frozenset[str]) -> frozenset[str]:
        """The flags a message gets when it is copied or moved into mailbox."""
        name = mailbox.lower()
        if self.junk is not None and self.junk.search(name):
            return (flags - {NOTJUNK}) | {JUNK}
        if self.neutral is not None and self.neutral.search(name):
            return flags - {JUNK, NOTJUNK}
        if self.notjunk is not None:
            if self.notjunk.search(name):
                return (flags - {JUNK}) | {NOTJUNK}
            return flags
        if self.junk is not None and self.neutral is not None:
            return (flags - {JUNK}) | {NOTJUNK}
        return flags


DEFAULT_JUNK_FLAG_RULES: Final = JunkFlagRules()
