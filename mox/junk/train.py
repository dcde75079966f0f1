"""Training the junk filter from flags, as mox's store/train.go.

A message that has $Junk is trained as spam, one with $NotJunk as ham (IMAP STORE, MOVE and COPY
set them by mailbox name, `mox.store.junkflags`); when the flags change back the earlier training
is undone, and so is the training of an expunged message. What was trained is kept per message
file (a move keeps the file) in the filter's database, with the words (the file is gone once a
message is expunged) and the sender facts the reputation checks use (mox's reputation also only
counts messages with a junk flag).

One `Trainer` per account listens on the account's change feed; its task does the work on the
event loop in the order of the changes, and closes the filter when cancelled.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from mox.config.model import JunkFilter
from mox.dmarc import org_domain
from mox.junk.bayes import Filter, Kind
from mox.store import (
    Account,
    Expunged,
    FlagsChanged,
    MailboxesChanged,
    Message,
    MessageAdded,
    StoreError,
)
from mox.store.changes import Change
from mox.store.junkflags import JUNK, NOTJUNK

__all__ = ["SenderFacts", "Trainer", "filter_for", "sender_facts", "start", "sync_message"]

log = logging.getLogger(__name__)

_filters: dict[Path, Filter] = {}


def filter_for(account: Account, params: JunkFilter) -> Filter:
    """The account's open filter (one per account and process: the bloom filter is in memory)."""
    filt = _filters.get(account.dir)
    if filt is None:
        filt = Filter(account.dir, params)
        _filters[account.dir] = filt
    return filt


def close_filter(account: Account) -> None:
    filt = _filters.pop(account.dir, None)
    if filt is not None:
        filt.close()


@dataclass(frozen=True, slots=True)
class SenderFacts:
    """Who a message is from, as far as the reputation checks care."""

    from_addr: str = ""
    from_domain: str = ""
    from_org: str = ""
    from_validated: bool = False  # DMARC pass: the From domain is authenticated
    dkim: tuple[str, ...] = ()  # domains of passing DKIM signatures
    spf: str = ""  # domain of a passing SPF check
    ip: str = ""


def sender_facts(header: bytes, meta: dict[str, Any]) -> SenderFacts:
    msg = BytesHeaderParser().parsebytes(header, headersonly=True)
    froms = email.utils.getaddresses([str(v) for v in msg.get_all("From", [])])
    addr = froms[0][1].strip().lower() if froms else ""
    domain = addr.rpartition("@")[2] if "@" in addr else ""
    auth = meta.get("auth") or {}
    dmarc = auth.get("dmarc") or {}
    spf = auth.get("spf") or {}
    dkim = tuple(
        sorted(
            {
                str(d.get("domain", "")).lower()
                for d in auth.get("dkim") or []
                if d.get("status") == "pass" and d.get("domain")
            }
        )
    )
    ip = str(meta.get("remote_ip") or "")
    spf_domain = str(spf.get("domain", "")).lower() if spf.get("status") == "pass" else ""
    forward = meta.get("forward")
    if isinstance(forward, dict):
        # A forward ruleset matched (mox's IsForward): the forwarding server's IP, MAIL FROM
        # and EHLO, and its DKIM domain are no signal about the sender, now or later.
        via = str(forward.get("domain", ""))
        ip = spf_domain = ""
        dkim = tuple(d for d in dkim if not (via and (d == via or d.endswith("." + via))))
    org = ""
    if domain:
        try:
            org = org_domain(domain)
        except ValueError:
            org = domain
    return SenderFacts(
        from_addr=addr,
        from_domain=domain,
        from_org=org,
        from_validated=dmarc.get("status") == "pass",
        dkim=dkim,
        spf=spf_domain,
        ip=ip,
    )


def _header(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data if end < 0 else data[: end + 2]


def wanted(flags: frozenset[str]) -> Kind | None:
    if JUNK in flags:
        return "spam"
    if NOTJUNK in flags:
        return "ham"
    return None


def _kind(text: str) -> Kind:
    return "spam" if text == "spam" else "ham"


def _pack(words: set[str]) -> bytes:
    return zlib.compress("\n".join(sorted(words)).encode())


def _unpack(blob: bytes) -> set[str]:
    text = zlib.decompress(blob).decode()
    return set(text.split("\n")) if text else set()


def untrain_removed(filt: Filter, mailbox_id: int, uids: Iterable[int]) -> int:
    """Undo the training of expunged messages, from the words kept at training time (the
    message file is gone by now), as mox untrains removed messages."""
    n = 0
    for uid in uids:
        row = filt.conn.execute(
            "SELECT key, kind, words FROM trained WHERE mailbox_id = ? AND uid = ?",
            (mailbox_id, uid),
        ).fetchone()
        if row is None:
            continue
        if row[2] is not None:
            filt.untrain_words(_unpack(row[2]), _kind(row[1]))
        filt.conn.execute("DELETE FROM trained WHERE key = ?", (row[0],))
        n += 1
    return n


def untrain_deleted_mailboxes(account: Account, filt: Filter) -> int:
    """Undo the training of messages whose mailbox was deleted (a delete brings no Expunged)."""
    ids = [r[0] for r in filt.conn.execute("SELECT DISTINCT mailbox_id FROM trained")]
    n = 0
    for mailbox_id in ids:
        if mailbox_id and account.get_mailbox_by_id(mailbox_id) is None:
            uids = [
                r[0]
                for r in filt.conn.execute(
                    "SELECT uid FROM trained WHERE mailbox_id = ?", (mailbox_id,)
                )
            ]
            n += untrain_removed(filt, mailbox_id, uids)
    return n


def sync_message(account: Account, filt: Filter, msg: Message) -> bool:
    """Bring the training of one message in line with its flags; True if anything changed."""
    want = wanted(msg.flags)
    row = filt.conn.execute(
        "SELECT kind, words, mailbox_id, uid FROM trained WHERE key = ?", (msg.path,)
    ).fetchone()
    have: Kind | None = None if row is None else _kind(row[0])
    if want == have:
        if row is not None and (row[2], row[3]) != (msg.mailbox_id, msg.uid):
            # Moved: the row follows the message file to its new place.
            filt.conn.execute(
                "UPDATE trained SET mailbox_id = ?, uid = ? WHERE key = ?",
                (msg.mailbox_id, msg.uid, msg.path),
            )
        return False
    try:
        data = account.read_message(msg)
    except (StoreError, OSError):
        return False  # expunged meanwhile
    words = filt.words(data)
    if row is not None and have is not None:
        filt.untrain_words(_unpack(row[1]) if row[1] is not None else words, have)
        filt.conn.execute("DELETE FROM trained WHERE key = ?", (msg.path,))
    if want is not None:
        filt.train_words(words, want)
        f = sender_facts(_header(data), account.message_meta(msg))
        filt.conn.execute(
            "INSERT OR REPLACE INTO trained (key, kind, changed, from_addr, from_domain, "
            "from_org, from_validated, dkim, spf, ip, mailbox_id, uid, words) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                msg.path,
                want,
                time.time(),
                f.from_addr,
                f.from_domain,
                f.from_org,
                int(f.from_validated),
                " ".join(f.dkim),
                f.spf,
                f.ip,
                msg.mailbox_id,
                msg.uid,
                _pack(words),
            ),
        )
    log.info(
        "junk filter trained",
        extra={"account": account.name, "uid": msg.uid, "was": have or "-", "now": want or "-"},
    )
    return True


class Trainer:
    """Follows one account's changes and trains its filter."""

    def __init__(self, account: Account, params: JunkFilter) -> None:
        self.account = account
        self.filter = filter_for(account, params)
        self._pending: list[list[Change]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        account.add_listener(self._on_changes)

    def _on_changes(self, changes: list[Change]) -> None:
        kinds = (MessageAdded, FlagsChanged, Expunged, MailboxesChanged)
        if any(isinstance(c, kinds) for c in changes):
            self._pending.append(changes)
            self._idle.clear()
            self._wake.set()

    async def idle(self) -> None:
        """Wait until every change seen so far is trained (for tests)."""
        await self._idle.wait()

    def process(self, changes: list[Change]) -> None:
        for c in changes:
            if isinstance(c, MailboxesChanged):
                try:
                    untrain_deleted_mailboxes(self.account, self.filter)
                except Exception:
                    log.exception("junk filter untraining failed")
                continue
            if isinstance(c, Expunged):
                try:
                    untrain_removed(self.filter, c.mailbox_id, c.uids)
                except Exception:
                    log.exception("junk filter untraining failed", extra={"uids": c.uids})
                continue
            for msg in self.account.get_messages(c.mailbox_id, [c.uid]):
                try:
                    sync_message(self.account, self.filter, msg)
                except Exception:
                    log.exception("junk filter training failed", extra={"uid": msg.uid})

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    self.process(self._pending.pop(0))
                self.filter.flush()
                self._idle.set()
        finally:
            self.account.remove_listener(self._on_changes)
            close_filter(self.account)


_trainers: dict[Path, Trainer] = {}


def trainer_for(account: Account) -> Trainer | None:
    return _trainers.get(account.dir)


def start(account: Account, params: JunkFilter) -> asyncio.Task[None]:
    """Start training the account's filter from its flags; cancel the task to stop."""
    trainer = Trainer(account, params)
    _trainers[account.dir] = trainer

    async def main() -> None:
        try:
            await trainer.run()
        finally:
            _trainers.pop(account.dir, None)

    return asyncio.create_task(main(), name=f"junk-train-{account.name}")
