"""The selected mailbox as one session sees it: numbering, known flags, pending changes.

Implementation notes:
- Sequence number n is ``uids[n-1]`` (RFC 9051 §2.3.1.2). The list only changes when the client is
  told: new messages are appended when their EXISTS goes out, expunged ones removed when their
  EXPUNGE goes out. Until then an expunged message keeps its sequence number, and a FETCH of it
  returns nothing.
- The store's change feed (``Account.add_listener``) calls ``on_changes`` on the event loop right
  after each commit, before the writer's futures resolve; so when our own write returns, its changes
  are already queued here. Own STORE results update ``flags``/``modseqs`` first, and queued changes
  with a modseq not above the known one are dropped, so nothing is reported twice.
- ``take_updates`` turns the queue into untagged responses: EXPUNGE (only when allowed,
  RFC 9051 §7.5.1 forbids them during FETCH, STORE and SEARCH), EXISTS, FLAGS when new keywords
  appear, and FETCH (FLAGS) for flag changes.
- The extensions the client enabled (``enabled``, shared with the connection) change the forms:
  MODSEQ in FETCH after CONDSTORE (RFC 7162 §3.1.2), VANISHED instead of EXPUNGE after QRESYNC
  (RFC 7162 §3.2.10) or UIDONLY, and UIDFETCH instead of FETCH after UIDONLY (RFC 9586 §3.3).
- ``saved`` is the SEARCHRES result (RFC 5182): UIDs, so expunges need no bookkeeping; "$" only
  addresses those still here.
- SELECT loads only the UIDs and the keywords in use (``Account.mailbox_view``, one covering index
  scan), not every message. ``flags``/``modseqs`` hold only what this session was told since; for
  other messages what the client knows is the state at SELECT, so a change with a modseq not above
  the mailbox's modseq at SELECT (``base_modseq``) is already known. ``flags_of`` reads the flags
  of the others from the store when a STORE response needs them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from mox.imap.abnf import SYSTEM_FLAGS
from mox.imap.commands import SeqSet, compact_set
from mox.imap.errors import ImapBad
from mox.imap.responses import (
    DataResponse,
    Exists,
    Expunge,
    Fetch,
    Flags,
    ListValue,
    Value,
    Vanished,
    atoms,
)
from mox.store import Account, Change, Expunged, FlagsChanged, Message, MessageAdded


def sort_flags(flags: Iterable[str]) -> list[str]:
    """Flags in a stable order: system flags first, then keywords alphabetically."""
    order = {f: i for i, f in enumerate(SYSTEM_FLAGS)}
    return sorted(flags, key=lambda f: (order.get(f, len(order)), f))


class SelectedMailbox:
    """See the module docstring."""

    def __init__(
        self,
        account: Account,
        mailbox_id: int,
        name: str,
        uidvalidity: int,
        *,
        readonly: bool,
        enabled: set[str] | None = None,
    ) -> None:
        self.enabled: set[str] = set() if enabled is None else enabled
        self.saved: list[int] = []  # RFC 5182 §2.1: initially empty
        self.account = account
        self.mailbox_id = mailbox_id
        self.name = name
        self.uidvalidity = uidvalidity
        self.readonly = readonly
        view = account.mailbox_view(mailbox_id)
        self.uids: list[int] = view.uids
        self.base_modseq = view.highest_modseq
        # Only messages the client was told about since SELECT (see the module docstring).
        self.flags: dict[int, frozenset[str]] = {}
        self.modseqs: dict[int, int] = {}
        self.keywords: set[str] = set(view.keywords)
        self.pending: list[Change] = []
        self.expunged: set[int] = set()  # expunged in the store, not yet announced

    @property
    def condstore(self) -> bool:
        # RFC 7162 §3.2.3: enabling QRESYNC enables CONDSTORE too.
        return bool(self.enabled & {"CONDSTORE", "QRESYNC"})

    @property
    def vanished_form(self) -> bool:
        """VANISHED instead of EXPUNGE (RFC 7162 §3.2.10, RFC 9586 §3.3)."""
        return bool(self.enabled & {"QRESYNC", "UIDONLY"})

    @property
    def uidonly(self) -> bool:
        return "UIDONLY" in self.enabled

    def fetch_response(self, seq: int, uid: int, items: list[tuple[str, Value]]) -> Fetch:
        """FETCH, or UIDFETCH after ENABLE UIDONLY (RFC 9586 §3.3: no UID item, the number is
        the UID)."""
        if self.uidonly:
            return Fetch(uid, tuple(i for i in items if i[0] != "UID"), uidfetch=True)
        return Fetch(seq, tuple(items))

    # --- numbering ---

    def __len__(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def resolve(self, seqset: SeqSet, *, uid: bool) -> list[tuple[int, int]]:
        """(seq, uid) pairs addressed by seqset, ascending.

        RFC 9051 §6.4.8: UIDs that do not exist are ignored, and "n:*" always includes the highest
        UID. Sequence numbers must exist (RFC 9051 §9 seq-number; BAD otherwise). "$" is the
        saved search result (RFC 5182 §2.1), in both forms.
        """
        if seqset.saved:
            saved = set(self.saved)
            return [(i + 1, u) for i, u in enumerate(self.uids) if u in saved]
        if uid:
            if not self.uids:
                return []
            star = self.uids[-1]
            out: list[tuple[int, int]] = []
            for lo, hi in sorted(r.bounds(star) for r in seqset.ranges):
                i = bisect.bisect_left(self.uids, lo)
                while i < len(self.uids) and self.uids[i] <= hi:
                    out.append((i + 1, self.uids[i]))
                    i += 1
            return sorted(set(out))
        if not self.uids and seqset.has_star():
            return []  # "1:*" on an empty mailbox: nothing, not an error
        if seqset.max_number() > len(self.uids):
            raise ImapBad("message sequence number out of range")
        return [(n, self.uids[n - 1]) for n in seqset.expand(len(self.uids))]

    def known_modseq(self, uid: int) -> int:
        """The modseq of the state of uid that the client knows (at most, see module docstring)."""
        return self.modseqs.get(uid, self.base_modseq)

    # --- flags we reported ---

    def flags_of(self, uids: Iterable[int]) -> dict[int, frozenset[str]]:
        """Flags of messages of this view (as reported, else as stored now, which are then
        recorded as reported); messages expunged from the store are left out."""
        out: dict[int, frozenset[str]] = {}
        missing: list[int] = []
        for u in uids:
            f = self.flags.get(u)
            if f is not None:
                out[u] = f
            elif self.seq_of(u) is not None:
                missing.append(u)
        if missing:
            msgs = self.account.get_messages(self.mailbox_id, missing)
            self.note_messages(msgs)
            for m in msgs:
                out[m.uid] = self.flags.get(m.uid, m.flags)
        return out

    def note_messages(self, messages: Iterable[Message]) -> list[str]:
        """Record flags the client is being told about; returns keywords not seen before."""
        new: list[str] = []
        for m in messages:
            if self.seq_of(m.uid) is not None and m.modseq >= self.modseqs.get(m.uid, 0):
                self.flags[m.uid] = m.flags
                self.modseqs[m.uid] = m.modseq
            for f in m.flags:
                if not f.startswith("\\") and f not in self.keywords:
                    self.keywords.add(f)
                    new.append(f)
        return new

    def all_flags(self) -> list[str]:
        """For the FLAGS response: system flags plus keywords in use (RFC 9051 §7.3.5)."""
        return [*SYSTEM_FLAGS, *sorted(self.keywords)]

    # --- change feed ---

    def on_changes(self, changes: list[Change]) -> bool:
        """Queue changes for this mailbox; True if any were."""
        mine = [
            ch
            for ch in changes
            if isinstance(ch, MessageAdded | FlagsChanged | Expunged)
            and ch.mailbox_id == self.mailbox_id
        ]
        self.pending.extend(mine)
        return bool(mine)

    def take_updates(self, *, allow_expunge: bool, fetch_uid: bool) -> list[DataResponse]:
        """Untagged responses for the queued changes (see the module docstring)."""
        added: list[int] = []
        changed: dict[int, tuple[frozenset[str], int]] = {}
        for ch in self.pending:
            if isinstance(ch, MessageAdded):
                if (not self.uids or ch.uid > self.uids[-1]) and ch.uid not in added:
                    added.append(ch.uid)
            elif isinstance(ch, FlagsChanged):
                changed[ch.uid] = (ch.flags, ch.modseq)
            elif isinstance(ch, Expunged):
                for u in ch.uids:
                    if u in added:
                        added.remove(u)  # never announced, never will be
                    elif self.seq_of(u) is not None:
                        self.expunged.add(u)
        self.pending.clear()

        out: list[DataResponse] = []
        if allow_expunge and self.expunged and self.vanished_form:
            gone = sorted(u for u in self.expunged if self.seq_of(u) is not None)
            for u in gone:
                seq = self.seq_of(u)
                if seq is not None:
                    del self.uids[seq - 1]
                self.flags.pop(u, None)
                self.modseqs.pop(u, None)
            if gone:
                out.append(Vanished(compact_set(gone)))  # RFC 7162 §3.2.10
            self.expunged.clear()
        if allow_expunge and self.expunged:
            # RFC 9051 §7.5.1: each EXPUNGE renumbers the messages after it; send them in order.
            for u in sorted(self.expunged):
                seq = self.seq_of(u)
                if seq is None:
                    continue
                del self.uids[seq - 1]
                self.flags.pop(u, None)
                self.modseqs.pop(u, None)
                out.append(Expunge(seq))
            self.expunged.clear()
        new_keywords: list[str] = []
        if added:
            fresh = self.account.get_messages(self.mailbox_id, added)
            for m in fresh:
                self.uids.append(m.uid)
                self.flags[m.uid] = m.flags
                self.modseqs[m.uid] = m.modseq
                changed.pop(m.uid, None)
            new_keywords += self.note_messages(fresh)
            out.append(Exists(len(self.uids)))  # RFC 9051 §7.4.1
        fetches: list[DataResponse] = []
        for u, (flags, modseq) in sorted(changed.items()):
            if u in self.expunged or modseq <= self.known_modseq(u) or self.seq_of(u) is None:
                continue
            self.flags[u] = flags
            self.modseqs[u] = modseq
            for f in flags:
                if not f.startswith("\\") and f not in self.keywords:
                    self.keywords.add(f)
                    new_keywords.append(f)
            seq = self.seq_of(u)
            if seq is None:
                continue
            items: list[tuple[str, Value]] = []
            if fetch_uid:
                items.append(("UID", u))
            items.append(("FLAGS", atoms(sort_flags(flags))))
            if self.condstore:
                items.append(("MODSEQ", ListValue((modseq,))))  # RFC 7162 §3.1.4.1
            fetches.append(self.fetch_response(seq, u, items))
        if new_keywords:
            out.append(Flags(tuple(self.all_flags())))  # RFC 9051 §7.3.5
        out += fetches
        return out
