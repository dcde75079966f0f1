"""Mailbox commands: LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, SELECT,
EXAMINE (RFC 9051 §6.3).

Implementation notes:
- The hierarchy separator is "/" and INBOX is stored as "Inbox" (reference §1.5); any case of
  "INBOX" as the first level of a name or pattern means "Inbox" (RFC 9051 §5.1), "INBO*" does not
  match it.
- New mailboxes are subscribed, as are parents created along with them (like the Go mox).
- Deleting the mailbox that this session has selected is refused with NO [INUSE] (RFC 5530); when
  another session deletes it, the selected session gets BYE at its next command (like Dovecot).
- LIST always returns \\HasChildren or \\HasNoChildren and the special-use attribute (RFC 6154).
- SELECT with QRESYNC (RFC 7162 §3.2.5) reports what changed since the client's modseq from the
  store's tombstones: VANISHED (EARLIER) for expunged UIDs, then FETCH for changed messages.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.commands import compact_set
from mox.imap.errors import ImapBad, ImapNo
from mox.imap.responses import (
    Exists,
    Flags,
    ListData,
    ListValue,
    Recent,
    ResponseCode,
    StatusData,
    Str,
    Untagged,
    Value,
    Vanished,
    atoms,
)
from mox.imapserver.common import SEPARATOR, Ok, code, get_mailbox
from mox.imapserver.selected import SelectedMailbox, sort_flags
from mox.store import Account, Mailbox

if TYPE_CHECKING:
    from mox.imapserver.session import Session

INBOX: Final = "Inbox"


def canonical_name(name: str) -> str:
    """Map "INBOX" in any case, also as the first level, to the stored "Inbox" (RFC 9051 §5.1)."""
    first, sep, rest = name.partition(SEPARATOR)
    if first.upper() == "INBOX":
        return INBOX + sep + rest
    return name


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """LIST wildcards: "*" matches anything, "%" anything but the separator (RFC 9051 §6.3.9)."""
    out = []
    for ch in canonical_name(pattern):
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^" + re.escape(SEPARATOR) + "]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def pattern_matches(regexes: list[re.Pattern[str]], name: str) -> bool:
    """Whether a mailbox name matches one of the LIST patterns."""
    upper = None
    if name == INBOX or name.startswith(INBOX + SEPARATOR):
        upper = "INBOX" + name[len(INBOX) :]
    return any(rx.fullmatch(name) or (upper is not None and rx.fullmatch(upper)) for rx in regexes)


def _children(names: set[str], name: str) -> bool:
    prefix = name + SEPARATOR
    return any(n.startswith(prefix) for n in names)


def status_data(
    account: Account, mb: Mailbox, items: tuple[str, ...], appendlimit: int = 0
) -> StatusData:
    st = account.mailbox_status(mb.id)
    values: list[tuple[str, int]] = []
    for item in items:
        # RFC 9051 §6.3.11 status-att; RECENT only for IMAP4rev1 (RFC 3501 §6.3.10), always 0.
        if item == "MESSAGES":
            values.append((item, st.messages))
        elif item == "UIDNEXT":
            values.append((item, st.uidnext))
        elif item == "UIDVALIDITY":
            values.append((item, st.uidvalidity))
        elif item == "UNSEEN":
            values.append((item, st.unseen))
        elif item == "SIZE":
            values.append((item, st.size))
        elif item == "RECENT":
            values.append((item, 0))
        elif item in ("DELETED", "DELETED-STORAGE"):
            msgs = [m for m in account.list_messages(mb.id) if "\\Deleted" in m.flags]
            if item == "DELETED":
                values.append((item, len(msgs)))
            else:
                # RFC 9208 §4.4: storage freed by expunging, in units of 1024 octets.
                values.append((item, (sum(m.size for m in msgs) + 1023) // 1024))
        elif item == "HIGHESTMODSEQ":
            values.append((item, max(st.highest_modseq, 1)))  # RFC 7162 §3.1.6
        elif item == "APPENDLIMIT":
            values.append((item, appendlimit))  # RFC 7889 §3
    return StatusData(mb.name, tuple(values))


async def list_(s: Session, cmd: c.ListCmd) -> Ok | None:
    account = s.require_account()
    if cmd.patterns == ("",) and not cmd.select_opts:
        # RFC 9051 §6.3.9: an empty pattern asks for the separator and root name.
        s.send(ListData(("\\Noselect",), SEPARATOR, ""))
        return None
    mailboxes = {mb.name: mb for mb in account.list_mailboxes()}
    names = set(mailboxes)
    subscribed = set(account.subscriptions())
    regexes = [pattern_regex(cmd.reference + p) for p in cmd.patterns if p]
    sel_subscribed = "SUBSCRIBED" in cmd.select_opts
    sel_special = "SPECIAL-USE" in cmd.select_opts
    recursive = "RECURSIVEMATCH" in cmd.select_opts
    # RFC 5258 §3.1: the SUBSCRIBED selection option implies the SUBSCRIBED return option.
    ret_subscribed = sel_subscribed or "SUBSCRIBED" in cmd.return_opts

    candidates = sorted(subscribed | names) if sel_subscribed else sorted(names)
    for name in candidates:
        if not pattern_matches(regexes, name):
            continue
        mb = mailboxes.get(name)
        extended: list[tuple[str, Value]] = []
        if sel_subscribed and name not in subscribed:
            if not recursive or not any(n.startswith(name + SEPARATOR) for n in subscribed):
                continue
            # RFC 5258 §3.5: a parent listed because of subscribed children.
            extended.append(("CHILDINFO", ListValue((Str("SUBSCRIBED"),))))
        if sel_special and (mb is None or not mb.special_use):
            continue  # RFC 6154 §5.3
        attrs: list[str] = []
        if mb is None:
            attrs.append("\\NonExistent")  # RFC 9051 §7.3.1
        else:
            attrs.append("\\HasChildren" if _children(names, name) else "\\HasNoChildren")
            if mb.special_use:
                attrs.append(mb.special_use)
        if ret_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        s.send(ListData(tuple(attrs), SEPARATOR, name, extended=tuple(extended)))
        # RFC 9051 §6.3.9.4 (LIST-STATUS): a STATUS response right after the LIST response, not
        # for the selected mailbox (RFC 5819 §2: its state comes as unsolicited responses).
        selected = s.selected is not None and mb is not None and s.selected.mailbox_id == mb.id
        if cmd.status_items and mb is not None and not selected:
            s.send(status_data(account, mb, cmd.status_items, s.config.max_literal))
        if cmd.metadata and mb is not None:
            from mox.imapserver.extras import metadata_for_list

            s.send(metadata_for_list(s, mb.id, mb.name, cmd.metadata))  # RFC 9590 §3
    return None


async def lsub(s: Session, cmd: c.Lsub) -> Ok | None:
    # RFC 3501 §6.3.9 (deprecated in RFC 9051 but still used by IMAP4rev1 clients).
    account = s.require_account()
    names = {mb.name for mb in account.list_mailboxes()}
    regexes = [pattern_regex(cmd.reference + cmd.pattern)]
    for name in sorted(account.subscriptions()):
        if pattern_matches(regexes, name):
            attrs = () if name in names else ("\\Noselect",)
            s.send(ListData(attrs, SEPARATOR, name, kind="LSUB"))
    return None


def _target_name(name: str) -> str:
    # RFC 9051 §6.3.4: a trailing separator declares intent to create inferiors; drop it.
    name = canonical_name(name)
    while name.endswith(SEPARATOR) and len(name) > 1:
        name = name[:-1]
    return name


async def create(s: Session, cmd: c.Create) -> Ok | None:
    account = s.require_account()
    name = _target_name(cmd.mailbox)
    if name == INBOX:
        raise ImapNo("INBOX always exists", code("ALREADYEXISTS"))  # RFC 9051 §6.3.4
    before = {mb.name for mb in account.list_mailboxes()}
    special: str | None = None
    if cmd.special_use:
        if len(cmd.special_use) > 1:
            # RFC 6154 §3: a server may refuse combinations; one per mailbox here.
            raise ImapNo("only one special-use attribute per mailbox", code("USEATTR"))
        special = cmd.special_use[0]
    mb = await account.create_mailbox(name, special)
    # Subscribe the new mailbox and the parents created with it (reference §1.5).
    parts = mb.name.split(SEPARATOR)
    for i in range(1, len(parts) + 1):
        level = SEPARATOR.join(parts[:i])
        if level not in before:
            await account.set_subscribed(level, True)
    return None


async def delete(s: Session, cmd: c.Delete) -> Ok | None:
    account = s.require_account()
    mb = get_mailbox(account, canonical_name(cmd.mailbox))
    if mb.name == INBOX:
        raise ImapNo("cannot delete INBOX", code("CANNOT"))  # RFC 9051 §6.3.5
    names = {m.name for m in account.list_mailboxes()}
    if _children(names, mb.name):
        # mox has no \Noselect mailboxes, so a mailbox with children cannot go (RFC 9051 §6.3.5).
        raise ImapNo("mailbox has child mailboxes", code("HASCHILDREN"))
    if s.selected is not None and s.selected.mailbox_id == mb.id:
        raise ImapNo("mailbox is selected in this session", code("INUSE"))
    await account.delete_mailbox(mb.name)
    return None


async def rename(s: Session, cmd: c.Rename) -> Ok | None:
    account = s.require_account()
    old = get_mailbox(account, canonical_name(cmd.old))
    new = _target_name(cmd.new)
    if new == INBOX or account.get_mailbox(new) is not None:
        raise ImapNo("target mailbox exists", code("ALREADYEXISTS"))  # RFC 9051 §6.3.6
    await account.rename_mailbox(old.name, new)
    return None


async def subscribe(s: Session, cmd: c.Subscribe) -> Ok | None:
    # RFC 9051 §6.3.7: the name need not exist.
    await s.require_account().set_subscribed(_target_name(cmd.mailbox), True)
    return None


async def unsubscribe(s: Session, cmd: c.Unsubscribe) -> Ok | None:
    account = s.require_account()
    name = _target_name(cmd.mailbox)
    if name not in account.subscriptions():
        raise ImapNo("not subscribed", code("NONEXISTENT"))  # RFC 9051 §6.3.8
    await account.set_subscribed(name, False)
    return None


async def status(s: Session, cmd: c.Status) -> Ok | None:
    account = s.require_account()
    mb = get_mailbox(account, canonical_name(cmd.mailbox))
    if "HIGHESTMODSEQ" in cmd.items:
        s.conn.enable("CONDSTORE")  # RFC 7162 §3.1: a CONDSTORE enabling command
    s.send(status_data(account, mb, cmd.items, s.config.max_literal))  # RFC 9051 §6.3.11
    return None


async def select(s: Session, cmd: c.Select) -> Ok | None:
    # RFC 9051 §6.3.2 (SELECT) and §6.3.3 (EXAMINE).
    account = s.require_account()
    if cmd.qresync is not None and "QRESYNC" not in s.conn.enabled:
        raise ImapBad("ENABLE QRESYNC first")  # RFC 7162 §3.2.5
    if cmd.condstore:
        s.conn.enable("CONDSTORE")  # RFC 7162 §3.1.8: a CONDSTORE enabling command
    if s.selected is not None:
        # RFC 9051 §6.3.2: closing the current mailbox is announced with [CLOSED], even if the
        # new SELECT fails (which leaves the selected state, see mox.imap.state).
        s.deselect()
        s.send(Untagged("OK", "previous mailbox is now closed", code("CLOSED")))
    mb = get_mailbox(account, canonical_name(cmd.mailbox))
    view = SelectedMailbox(
        account, mb.id, mb.name, mb.uidvalidity, readonly=cmd.readonly, enabled=s.conn.enabled
    )
    rev2 = s.conn.rev2
    s.send(Exists(len(view)))
    if not rev2:
        s.send(Recent(0))  # RFC 3501 §6.3.1: required in IMAP4rev1; no \Recent in mox
    s.send(Untagged("OK", "UIDs valid", code("UIDVALIDITY", mb.uidvalidity)))
    s.send(Untagged("OK", "next UID", code("UIDNEXT", max(mb.uidnext, 1))))
    # RFC 7162 §3.1.2.1: HIGHESTMODSEQ on every SELECT/EXAMINE (never 0, as the Go mox).
    highest = max(mb.highest_modseq, 1)
    s.send(Untagged("OK", "highest modseq", code("HIGHESTMODSEQ", highest)))
    flags = view.all_flags()
    s.send(Flags(tuple(flags)))
    permanent: list[str] = [] if cmd.readonly else [*flags, "\\*"]
    perm = ResponseCode("PERMANENTFLAGS", (atoms(permanent),))
    s.send(Untagged("OK", "permanent flags", perm))
    if not rev2:
        unseen_uid = account.first_unseen_uid(mb.id)
        first_unseen = None if unseen_uid is None else view.seq_of(unseen_uid)
        if first_unseen is not None:
            s.send(Untagged("OK", "first unseen", code("UNSEEN", first_unseen)))  # RFC 3501
    else:
        names = {m.name for m in account.list_mailboxes()}
        attrs = ["\\HasChildren" if _children(names, mb.name) else "\\HasNoChildren"]
        if mb.special_use:
            attrs.append(mb.special_use)
        s.send(ListData(tuple(attrs), SEPARATOR, mb.name))  # RFC 9051 §6.3.2
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mb.uidvalidity:
        _qresync(s, view, cmd.qresync)
    s.selected = view
    if cmd.readonly:
        return Ok("EXAMINE completed", code("READ-ONLY"))
    return Ok("SELECT completed", code("READ-WRITE"))


def _qresync(s: Session, view: SelectedMailbox, q: c.QresyncParams) -> None:
    """RFC 7162 §3.2.5.2: what changed since the client's modseq."""
    changed, vanished = view.account.changes_since(view.mailbox_id, q.modseq)
    if q.known_uids is not None:
        star = max([*view.uids, *vanished, 1])
        vanished = [u for u in vanished if q.known_uids.contains(u, star)]
    if vanished:
        s.send(Vanished(compact_set(vanished), earlier=True))
    for m in changed:
        seq = view.seq_of(m.uid)
        if seq is None:
            continue
        items: list[tuple[str, Value]] = [
            ("UID", m.uid),
            ("FLAGS", atoms(sort_flags(m.flags))),
            ("MODSEQ", ListValue((m.modseq,))),
        ]
        s.send(view.fetch_response(seq, m.uid, items))
