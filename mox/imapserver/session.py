"""One IMAP connection: the command loop, the command boundary and the dispatch table.

Implementation notes:
- One command at a time (reference §1.5, RFC 9051 §5.5): the loop asks the sans-IO connection for
  the next event only after the previous command was answered, so a pipelined literal gets its "+"
  only then, and nothing runs concurrently within a session.
- Handlers are looked up in the explicit ``COMMANDS`` table by command type. They raise ``ImapNo``,
  ``ImapBad`` or ``ImapBye``; ``execute`` renders those (and store errors) once, as the tagged or
  BYE response. Unexpected exceptions are logged with a traceback and answered ``NO [SERVERBUG]``.
- Writes go through the store and are committed before their response is sent; the store then
  broadcasts the change to every session (``on_changes``), which report it at the next command
  boundary or at once while IDLE. Nothing here holds a lock across an await.
- After a command in the selected state, pending changes are reported as untagged responses; EXPUNGE
  is held back during FETCH, STORE and SEARCH (RFC 9051 §7.5.1).
- Responses are collected by the transport and written once per command (at the next wait for
  input or ``drain``), or in 64 KiB chunks for big ones.
- Shutdown (``request_stop``, from ``stop_imap_server``): a session waiting for a new command, or
  in IDLE/NOTIFY, says BYE (RFC 9051 §7.1.5) at once; a command that is partly received (an APPEND
  literal arriving) or running is finished and answered first, then BYE. The server bounds this.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from mox.auth.login import Authenticator
from mox.imap import commands as c
from mox.imap.connection import CLOSED, ClientLine, ImapConnection, InvalidCommand
from mox.imap.errors import ImapBad, ImapBye, ImapError, ImapNo
from mox.imap.receiver import NEED_DATA, NeedContinuation
from mox.imap.responses import (
    Atom,
    Capability,
    Continuation,
    Enabled,
    IdData,
    Namespace,
    Response,
    ResponseCode,
    Tagged,
    Untagged,
)
from mox.imap.state import State
from mox.imapserver import (
    append,
    auth,
    common,
    extras,
    fetch,
    idle,
    mailboxes,
    messages,
    notify,
    search,
    sort,
)
from mox.imapserver.common import (
    CAPABILITIES,
    ENABLEABLE,
    ENABLED_NAMES,
    ConnectionClosed,
    Ok,
    code,
    log,
)
from mox.imapserver.selected import SelectedMailbox
from mox.imapserver.transport import Transport
from mox.ratelimit import ConnectionLimiter
from mox.store import (
    Account,
    Change,
    MailboxesChanged,
    MailboxExists,
    MailboxInvalid,
    MailboxNotFound,
    Store,
    StoreError,
)
from mox.store.junkflags import DEFAULT_JUNK_FLAG_RULES, JunkFlagRules

TLS_HANDSHAKE_TIMEOUT: Final = 30.0
# Commands during which EXPUNGE responses must not be sent (RFC 9051 §7.5.1).
_NO_EXPUNGE: Final = frozenset({"FETCH", "STORE", "SEARCH"})
# Commands that take message sequence numbers; refused after ENABLE UIDONLY (RFC 9586 §3.2).
_SEQUENCE_COMMANDS: Final = frozenset(
    {"FETCH", "STORE", "SEARCH", "COPY", "MOVE", "REPLACE", "SORT", "THREAD"}
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What start_imap_server was given."""

    store: Store
    authenticator: Authenticator
    hostname: str
    ssl_context: ssl.SSLContext | None
    implicit_tls: bool
    require_starttls: bool
    max_literal: int
    limiter: ConnectionLimiter | None = None
    junk_flags: JunkFlagRules | None = DEFAULT_JUNK_FLAG_RULES


class Session:
    """State of one connection; handlers get it as their first argument."""

    def __init__(self, config: ServerConfig, io: Transport) -> None:
        self.config = config
        self.io = io
        self.conn = ImapConnection(max_literal=config.max_literal)
        self.tls = config.implicit_tls
        self.account: Account | None = None
        self.username = ""
        self.selected: SelectedMailbox | None = None
        self.changed = asyncio.Event()
        self.failed_logins = 0
        self.after_response: Callable[[], Awaitable[None]] | None = None
        self.notify: notify.NotifyState | None = None
        self._mailboxes_changed = False
        self._closing = False
        self.stopping = False

    # --- output ---

    def send(self, response: Response) -> None:
        self.io.write(self.conn.send(response))

    async def drain(self) -> None:
        try:
            await self.io.drain()
        except ConnectionError as e:
            raise ConnectionClosed(str(e)) from e

    async def maybe_drain(self) -> None:
        """Wait for the client to read when our output backs up (between the messages of a long
        FETCH); otherwise keep collecting output."""
        if self.io.write_blocked:
            await self.drain()

    def request_stop(self) -> None:
        """The server is shutting down: see the module docstring."""
        self.stopping = True
        self.changed.set()  # wakes IDLE and NOTIFY waits
        self.io.interrupt()  # wakes a wait for the next command

    def capabilities(self, *, authenticated: bool = False) -> list[str]:
        plus = self.tls and bool(auth.sasl_context(self).channel_bindings)
        caps = []
        for cap in CAPABILITIES:
            if cap.endswith("-PLUS") and not plus:
                continue  # RFC 5802 §6: only with a channel binding to offer
            caps.append(cap.format(appendlimit=self.config.max_literal))
        if not authenticated and self.conn.state is State.NOT_AUTHENTICATED:
            if not self.tls and self.config.ssl_context is not None:
                caps.append("STARTTLS")  # RFC 9051 §6.2.1
            if self.tls or not self.config.require_starttls:
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")  # RFC 9051 §6.2.3
        return caps

    def capability_code(self) -> ResponseCode:
        return ResponseCode("CAPABILITY", tuple(Atom(x) for x in self.capabilities()))

    # --- input ---

    def _timeout(self) -> float:
        if self.account is None:
            return common.TIMEOUT_UNAUTHENTICATED
        return common.TIMEOUT_AUTHENTICATED

    async def read_more(self) -> None:
        """Feed the next input to the connection; ImapBye after the idle timeout, or when the
        server is shutting down and no command is partly received."""
        try:
            async with asyncio.timeout(self._timeout()):
                if self.conn.mid_command:
                    data = await self.io.read()
                else:
                    await self.io.wait_readable(interruptible=True)
                    if self.stopping:
                        raise ImapBye("server shutting down")
                    data = self.io.take()
        except TimeoutError:
            raise ImapBye("autologout; idle for too long") from None  # RFC 9051 §5.4
        if not data:
            raise ConnectionClosed("end of input")
        self.conn.receive_data(data)

    async def read_client_line(self) -> bytes:
        """The client's line after a continuation request (AUTHENTICATE, IDLE)."""
        await self.drain()
        while True:
            ev = self.conn.next_event()
            if isinstance(ev, ClientLine):
                return ev.data
            if isinstance(ev, InvalidCommand):
                raise ImapBad(ev.text, ev.code)
            if ev is NEED_DATA:
                await self.read_more()
            else:
                raise ImapBad("unexpected input")

    # --- account and change feed ---

    def set_account(self, name: str, username: str) -> None:
        self.account = self.config.store.account(name)
        self.username = username
        self.account.add_listener(self.on_changes)

    def require_account(self) -> Account:
        if self.account is None:
            raise ImapBad("not authenticated")
        return self.account

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise ImapBad("no mailbox selected")
        return self.selected

    def on_changes(self, changes: list[Change]) -> None:
        """Store listener: runs on the event loop right after a commit."""
        relevant = False
        if self.selected is not None:
            relevant = self.selected.on_changes(changes)
        if any(isinstance(ch, MailboxesChanged) for ch in changes):
            self._mailboxes_changed = True
            relevant = relevant or self.selected is not None
        if self.notify is not None and self.notify.on_changes(changes, self.selected):
            relevant = True
        if relevant:
            self.changed.set()

    def deselect(self) -> None:
        self.selected = None

    def flush_updates(self, *, allow_expunge: bool = True) -> None:
        """Send untagged responses for changes to the selected mailbox (and NOTIFY events)."""
        self.changed.clear()
        if self.notify is not None and self.account is not None:
            for resp in self.notify.take_updates(self.account, self.selected):
                self.send(resp)
        sel = self.selected
        if sel is None:
            self._mailboxes_changed = False
            return
        if self._mailboxes_changed:
            self._mailboxes_changed = False
            current = {mb.id: mb for mb in self.require_account().list_mailboxes()}
            mb = current.get(sel.mailbox_id)
            if mb is None:
                # Like Dovecot: the selected mailbox is gone, the session cannot continue.
                raise ImapBye("selected mailbox was deleted")
            sel.name = mb.name
        for resp in sel.take_updates(allow_expunge=allow_expunge, fetch_uid=True):
            self.send(resp)

    # --- the loop ---

    async def run(self) -> None:
        log.debug(
            "imap connection",
            extra={"remote": self.io.remote_ip, "hostname": self.config.hostname, "tls": self.tls},
        )
        ip = self.io.remote_ip
        limiter = self.config.limiter
        if limiter is not None and not limiter.open(ip):
            log.info("imap connection refused, too many", extra={"remote": ip})
            self.io.write(b"* BYE too many connections from your network, try later\r\n")
            self.io.close()
            return
        try:
            if self.config.authenticator.throttled(ip):
                # As the Go mox: an IP over the failed-login limit is turned away at once.
                self.send(Untagged("BYE", "too many authentication failures, try later"))
                await self.drain()
                return
            greeting = Untagged("OK", "mox imap", self.capability_code())
            self.send(greeting)
            while not self._closing:
                if self.stopping and not self.conn.mid_command:
                    self.send(Untagged("BYE", "server shutting down"))  # RFC 9051 §7.1.5
                    break
                ev = self.conn.next_event()
                if ev is CLOSED:
                    break
                if ev is NEED_DATA:
                    await self.drain()
                    try:
                        if self.notify is not None and self.notify.active:
                            # RFC 5465 §3: events are sent as they happen, between commands too.
                            await notify.wait_for_input(self)
                        else:
                            await self.read_more()
                    except ImapBye as e:
                        self.send(Untagged("BYE", e.text, e.code))
                        break
                    continue
                if isinstance(ev, NeedContinuation):
                    self.send(Continuation("Ready for literal data"))  # RFC 9051 §7.5
                    continue
                if isinstance(ev, InvalidCommand):
                    self._invalid(ev)
                    continue
                if isinstance(ev, ClientLine):
                    self.send(Untagged("BAD", "unexpected continuation data"))
                    continue
                await self.execute(ev)
                if self.after_response is not None:
                    hook, self.after_response = self.after_response, None
                    await self.drain()
                    await hook()
                if self.stopping and not self._closing:
                    self.send(Untagged("BYE", "server shutting down"))  # RFC 9051 §7.1.5
                    break
            await self.drain()
        except (ConnectionClosed, ConnectionError):
            pass
        except Exception:
            log.exception("imap session failed", extra={"remote": self.io.remote_ip})
        finally:
            if self.account is not None:
                self.account.remove_listener(self.on_changes)
            if limiter is not None:
                limiter.close(ip)
            self.io.close()

    def _invalid(self, ev: InvalidCommand) -> None:
        log.info("imap bad command", extra={"remote": self.io.remote_ip, "error": ev.text})
        if ev.tag is None:
            self.send(Untagged("BAD", ev.text, ev.code))
        else:
            if ev.status == "NO":
                self.send(Tagged(ev.tag, "NO", ev.text, ev.code))
            else:
                self.send(Tagged(ev.tag, "BAD", ev.text, ev.code))
        if ev.fatal or self.conn.too_many_bad:
            self.send(Untagged("BYE", "too many errors"))
            self._closing = True

    async def execute(self, cmd: c.Command) -> None:
        """Run one command and answer it: the only place where errors become responses."""
        handler = COMMANDS[type(cmd)]
        try:
            try:
                if "UIDONLY" in self.conn.enabled and cmd.name in _SEQUENCE_COMMANDS:
                    # RFC 9586 §3.2: message sequence numbers are not allowed.
                    raise ImapBad("use UID commands", code("UIDREQUIRED"))
                result = await handler(self, cmd)
            finally:
                if self.conn.state is State.SELECTED and self.selected is not None:
                    # UID FETCH/STORE/SEARCH may report expunges, the plain forms not.
                    uid_form = cmd.name != cmd.NAME
                    self.flush_updates(allow_expunge=uid_form or cmd.NAME not in _NO_EXPUNGE)
        except ImapBye as e:
            self.send(Untagged("BYE", e.text, e.code))
            self._closing = True
            return
        except ImapError as e:
            if e.status == "BAD":
                log.info("imap bad", extra={"cmd": cmd.name, "error": e.text})
            self._tagged_failure(cmd, "NO" if isinstance(e, ImapNo) else "BAD", e.text, e.code)
            return
        except MailboxNotFound:
            self._tagged_failure(cmd, "NO", "no such mailbox", code("NONEXISTENT"))
            return
        except MailboxExists:
            self._tagged_failure(cmd, "NO", "mailbox already exists", code("ALREADYEXISTS"))
            return
        except MailboxInvalid as e:
            self._tagged_failure(cmd, "NO", e.reason, code("CANNOT"))
            return
        except StoreError as e:
            log.info("imap store error", extra={"cmd": cmd.name, "error": str(e)})
            self._tagged_failure(cmd, "NO", "operation failed", None)
            return
        except (ConnectionClosed, ConnectionError):
            raise
        except Exception:
            log.exception("imap command failed", extra={"cmd": cmd.name})
            self._tagged_failure(cmd, "NO", "internal server error", code("SERVERBUG"))
            return
        ok = result or Ok()
        self.send(Tagged(cmd.tag, "OK", ok.text or f"{cmd.name} completed", ok.code))

    def _tagged_failure(
        self, cmd: c.Command, status: str, text: str, rcode: ResponseCode | None
    ) -> None:
        self.send(Tagged(cmd.tag, "NO" if status == "NO" else "BAD", text, rcode))
        if self.conn.state is not State.SELECTED:
            self.selected = None  # a failed SELECT closes the mailbox (RFC 9051 §6.3.2)
        if self.conn.too_many_bad:
            self.send(Untagged("BYE", "too many errors"))
            self._closing = True


# --- any state (RFC 9051 §6.1) ---


async def _capability(s: Session, cmd: c.Capability) -> Ok | None:
    s.send(Capability(tuple(s.capabilities())))  # RFC 9051 §6.1.1
    return None


async def _noop(s: Session, cmd: c.Noop | c.Check) -> Ok | None:
    # RFC 9051 §6.1.2: pending updates go out at the command boundary (see execute).
    return None


async def _logout(s: Session, cmd: c.Logout) -> Ok | None:
    s.send(Untagged("BYE", "logging out"))  # RFC 9051 §6.1.3
    return None


async def _id(s: Session, cmd: c.Id) -> Ok | None:
    s.send(IdData((("name", "mox"),)))  # RFC 2971 §3.1
    return None


# --- not authenticated (RFC 9051 §6.2) ---


async def _starttls(s: Session, cmd: c.StartTls) -> Ok | None:
    context = s.config.ssl_context
    if s.tls or context is None:
        raise ImapBad("STARTTLS not available")

    async def upgrade() -> None:
        # The tagged OK is out; everything pipelined after STARTTLS was already dropped by the
        # connection, and Transport.start_tls drops what is still buffered (RFC 9051 §6.2.1).
        try:
            await s.io.start_tls(context, TLS_HANDSHAKE_TIMEOUT)
        except (OSError, ssl.SSLError, TimeoutError) as e:
            raise ConnectionClosed(f"TLS handshake failed: {e}") from e
        s.tls = True

    s.after_response = upgrade
    return Ok("begin TLS negotiation now")


# --- authenticated state, small ones ---


async def _enable(s: Session, cmd: c.Enable) -> Ok | None:
    # RFC 5161 §3.1: only extensions we advertise can be enabled; others are ignored.
    done: list[str] = []
    for cap in cmd.capabilities:
        if cap in ENABLEABLE and cap not in s.conn.enabled:
            s.conn.enable(cap)
            done.append(ENABLED_NAMES.get(cap, cap))
            if cap == "QRESYNC":
                s.conn.enable("CONDSTORE")  # RFC 7162 §3.2.3
    s.send(Enabled(tuple(done)))
    return None


async def _namespace(s: Session, cmd: c.NamespaceCmd) -> Ok | None:
    s.send(Namespace())  # RFC 9051 §6.3.10: one personal namespace, no others
    return None


Handler = Callable[[Session, Any], Awaitable[Ok | None]]

COMMANDS: Final[dict[type[c.Command], Handler]] = {
    c.Capability: _capability,
    c.Noop: _noop,
    c.Logout: _logout,
    c.Id: _id,
    c.StartTls: _starttls,
    c.Login: auth.login,
    c.Authenticate: auth.authenticate,
    c.Enable: _enable,
    c.NamespaceCmd: _namespace,
    c.ListCmd: mailboxes.list_,
    c.Lsub: mailboxes.lsub,
    c.Create: mailboxes.create,
    c.Delete: mailboxes.delete,
    c.Rename: mailboxes.rename,
    c.Subscribe: mailboxes.subscribe,
    c.Unsubscribe: mailboxes.unsubscribe,
    c.Status: mailboxes.status,
    c.Select: mailboxes.select,
    c.Append: append.append,
    c.Idle: idle.idle,
    c.Check: _noop,  # RFC 3501 §6.4.1: a checkpoint; every write is already durable
    c.Close: messages.close,
    c.Unselect: messages.unselect,
    c.Expunge: messages.expunge,
    c.Store: messages.store,
    c.Copy: messages.copy,
    c.Move: messages.move,
    c.Replace: append.replace,
    c.Fetch: fetch.fetch,
    c.Search: search.search,
    c.ESearch: search.esearch,
    c.Sort: sort.sort,
    c.Thread: sort.thread,
    c.GetQuotaRoot: extras.getquotaroot,
    c.GetQuota: extras.getquota,
    c.SetQuota: extras.setquota,
    c.GetMetadata: extras.getmetadata,
    c.SetMetadata: extras.setmetadata,
    c.Compress: extras.compress,
    c.Notify: notify.notify,
}
