"""NOTIFY (RFC 5465): changes to mailboxes other than the selected one, pushed as they happen.

Implementation notes:
- ``NotifyState`` keeps the event groups and, from the store's change feed, the set of other
  mailboxes with message events and whether the mailbox list or subscriptions changed.
  ``take_updates`` turns them into STATUS responses (MessageNew, MessageExpunge, FlagChange;
  RFC 5465 §5.2-5.3) and LIST responses (MailboxName, SubscriptionChange; RFC 5465 §5.4-5.5,
  \\NonExistent for a removed mailbox and OLDNAME for a renamed one).
- With NOTIFY active the session does not only wait for input: it also flushes pending changes
  (``wait_for_input``), so events reach the client between commands (RFC 5465 §3). For the selected
  mailbox, SELECTED-DELAYED holds EXPUNGE back until a command allows it (RFC 5465 §5.1).
- The fetch attributes of MessageNew are accepted; new messages are announced with EXISTS and
  the usual UID FETCH of flags, not with the requested attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mox.imap import commands as c
from mox.imap.errors import ImapNo
from mox.imap.responses import DataResponse, ListData, ListValue, StatusData, Str
from mox.imapserver import common
from mox.imapserver.common import SEPARATOR, ConnectionClosed, Ok, code
from mox.store import Account, Change, Expunged, FlagsChanged, MailboxesChanged, MessageAdded

if TYPE_CHECKING:
    from mox.imapserver.selected import SelectedMailbox
    from mox.imapserver.session import Session

_MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange"})


class NotifyState:
    """See the module docstring."""

    def __init__(self, account: Account, groups: tuple[c.NotifyGroup, ...]) -> None:
        self.groups = groups
        self.active = any(g.events for g in groups)
        self.pending_status: set[int] = set()
        self.mailboxes_changed = False
        self.known = {mb.id: mb.name for mb in account.list_mailboxes()}
        self.subscribed = set(account.subscriptions())

    @property
    def selected_delayed(self) -> bool:
        return any(g.filter == "SELECTED-DELAYED" for g in self.groups)

    def _events_for(self, name: str, subscribed: set[str]) -> tuple[str, ...]:
        for g in self.groups:
            if g.filter in ("SELECTED", "SELECTED-DELAYED"):
                continue
            if _matches(g, name, subscribed):
                return g.events  # RFC 5465 §6: the first matching group counts
        return ()

    def on_changes(self, changes: list[Change], selected: SelectedMailbox | None) -> bool:
        relevant = False
        selected_id = selected.mailbox_id if selected is not None else None
        for ch in changes:
            if isinstance(ch, MailboxesChanged):
                self.mailboxes_changed = True
                relevant = True
            elif isinstance(ch, MessageAdded | Expunged | FlagsChanged):
                if ch.mailbox_id == selected_id:
                    continue
                name = self.known.get(ch.mailbox_id)
                event = {
                    MessageAdded: "MessageNew",
                    Expunged: "MessageExpunge",
                    FlagsChanged: "FlagChange",
                }[type(ch)]
                if name is not None and event in self._events_for(name, self.subscribed):
                    self.pending_status.add(ch.mailbox_id)
                    relevant = True
        return relevant

    def status_response(self, account: Account, mailbox_id: int) -> StatusData | None:
        name = self.known.get(mailbox_id)
        if name is None:
            return None
        try:
            st = account.mailbox_status(mailbox_id)
        except Exception:  # the mailbox went away meanwhile
            return None
        items = (("MESSAGES", st.messages), ("UIDNEXT", st.uidnext), ("UNSEEN", st.unseen))
        return StatusData(name, items)

    def take_updates(
        self, account: Account, selected: SelectedMailbox | None
    ) -> list[DataResponse]:
        out: list[DataResponse] = []
        if self.mailboxes_changed:
            self.mailboxes_changed = False
            out += self._mailbox_changes(account)
        for mailbox_id in sorted(self.pending_status):
            resp = self.status_response(account, mailbox_id)
            if resp is not None:
                out.append(resp)
        self.pending_status.clear()
        return out

    def _mailbox_changes(self, account: Account) -> list[DataResponse]:
        out: list[DataResponse] = []
        now = {mb.id: mb.name for mb in account.list_mailboxes()}
        subscribed = set(account.subscriptions())
        for mid, name in sorted(now.items(), key=lambda x: x[1]):
            old = self.known.get(mid)
            if "MailboxName" not in self._events_for(name, subscribed):
                continue
            if old is None:
                out.append(ListData((), SEPARATOR, name))  # RFC 5465 §5.4: created
            elif old != name:
                # RFC 5465 §5.4 and RFC 5258 §3.3: renamed, with the old name as OLDNAME.
                oldname = ListValue((Str(old),))
                out.append(ListData((), SEPARATOR, name, extended=(("OLDNAME", oldname),)))
        for mid, old in sorted(self.known.items(), key=lambda x: x[1]):
            if mid not in now and "MailboxName" in self._events_for(old, self.subscribed):
                out.append(ListData(("\\NonExistent",), SEPARATOR, old))  # deleted
        for name in sorted(subscribed ^ self.subscribed):
            if "SubscriptionChange" in self._events_for(name, subscribed | self.subscribed):
                attrs = ("\\Subscribed",) if name in subscribed else ()
                out.append(ListData(attrs, SEPARATOR, name))  # RFC 5465 §5.5
        self.known = now
        self.subscribed = subscribed
        return out


def _matches(group: c.NotifyGroup, name: str, subscribed: set[str]) -> bool:
    # filter-mailboxes (RFC 5465 §6)
    kind = group.filter
    if kind == "PERSONAL":
        return True
    if kind == "INBOXES":
        return name == "Inbox"  # the only mailbox mail is delivered to
    if kind == "SUBSCRIBED":
        return name in subscribed
    for target in group.mailboxes:
        target = "Inbox" + target[5:] if target[:5].upper() == "INBOX" else target
        if name == target:
            return True
        if kind == "SUBTREE" and name.startswith(target + SEPARATOR):
            return True
        if kind == "SUBTREE-ONE" and name.startswith(target + SEPARATOR):
            return SEPARATOR not in name[len(target) + 1 :]
    return False


async def notify(s: Session, cmd: c.Notify) -> Ok | None:
    account = s.require_account()
    if cmd.none:
        s.notify = None  # RFC 5465 §3.2
        return None
    for g in cmd.groups:
        if g.filter in ("SELECTED", "SELECTED-DELAYED") and (
            {"MailboxName", "SubscriptionChange"} & set(g.events)
        ):
            # RFC 5465 §6: mailbox events make no sense for the selected mailbox.
            raise ImapNo("mailbox events not allowed for the selected mailbox", code("BADEVENT"))
        if (
            g.events
            and "FlagChange" in g.events
            and not {"MessageNew", "MessageExpunge"} <= set(g.events)
        ):
            # RFC 5465 §5.2: FlagChange requires MessageNew and MessageExpunge.
            raise ImapNo("FlagChange needs MessageNew and MessageExpunge", code("BADEVENT"))
    state = NotifyState(account, cmd.groups)
    s.notify = state
    if cmd.status:
        # RFC 5465 §3.1 STATUS: the current status of every mailbox with message events.
        subscribed = set(account.subscriptions())
        for mb in account.list_mailboxes():
            if s.selected is not None and s.selected.mailbox_id == mb.id:
                continue
            if _MESSAGE_EVENTS & set(state._events_for(mb.name, subscribed)):
                resp = state.status_response(account, mb.id)
                if resp is not None:
                    s.send(resp)
    return None


async def wait_for_input(s: Session) -> None:
    """Wait for client input; meanwhile send changes as they are committed (RFC 5465 §3)."""
    input_ready = await common.wait_input_or_change(s.io.wait_readable(), s.changed)
    if s.stopping:
        return  # the session loop says BYE
    if s.changed.is_set():
        delayed = s.notify is not None and s.notify.selected_delayed
        s.flush_updates(allow_expunge=not delayed)
        await s.drain()
    if input_ready:
        data = s.io.take()
        if not data:
            raise ConnectionClosed("end of input")
        s.conn.receive_data(data)
