"""SMTP listeners on aiosmtpd: 25 (delivery), 587 (submission, STARTTLS), 465 (implicit TLS).

RFC 5321 (SMTP), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 2920 (PIPELINING), RFC 1870 (SIZE),
RFC 6152 (8BITMIME), RFC 2034 (ENHANCEDSTATUSCODES), RFC 3030 (CHUNKING), RFC 3461 (DSN),
RFC 6531 (SMTPUTF8), RFC 8689 (REQUIRETLS), RFC 9422 (LIMITS), RFC 8314 (implicit TLS).

Implementation notes:
- aiosmtpd carries the transport: line reading with a length limit, STARTTLS (discarding anything
  pipelined in plaintext after it, RFC 3207 §4.2), timeouts, HELO/RSET/NOOP/QUIT/HELP. We replace
  the commands whose parameters or data need our rules (EHLO, MAIL, RCPT, DATA, BDAT, AUTH,
  VRFY); all policy is in `pipeline` and `delivery`.
- Every reply after EHLO carries an enhanced status code (RFC 2034 §3), added in `push` where
  aiosmtpd's own replies lack one.
- Connections are limited per IP class (concurrency and rate); after 3 failed logins on a
  connection every reply is delayed ("slow mode", as mox).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import time
import warnings
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from mox import metrics
from mox.auth.login import Authenticator
from mox.auth.sasl import (
    LoginServer,
    PlainServer,
    SaslChallenge,
    SaslDone,
    SaslError,
    SaslVerified,
)
from mox.auth.scram import CramMD5Server, SaslContext, ScramServer, new_mechanism
from mox.config.load import LoadedConfig
from mox.dns.resolver import DnsError, Resolver, lookup_ips
from mox.queue.queue import Queue
from mox.ratelimit import ConnectionLimiter
from mox.reportdb import ReportDB
from mox.smtp.address import Address, AddressError, parse_path
from mox.smtp.codes import SmtpReply, with_enhanced
from mox.smtp.data import DataReader
from mox.smtp.params import ParamError, parse_params, xtext_decode
from mox.smtpserver.delivery import deliver_message
from mox.smtpserver.pipeline import check_mail_from, resolve_recipient
from mox.smtpserver.state import Conn, Recipient, ServerContext, SmtpKind, Transaction
from mox.store import Store
from mox.tls.channelbinding import channel_bindings

__all__ = ["MoxSMTP", "start_smtp_server"]

log = logging.getLogger(__name__)

MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
)  # as mox, strongest first
MAX_BOGUS_TRANSACTIONS = 10
CONTEXTS: weakref.WeakKeyDictionary[asyncio.Server, ServerContext] = weakref.WeakKeyDictionary()


async def drain_smtp_server(server: asyncio.Server, grace: float = 30.0) -> bool:
    """Graceful shutdown: stop accepting, refuse new transactions with 421, and wait (bounded)
    for transactions already in DATA/BDAT to be delivered. True when none was left behind."""
    server.close()
    ctx = CONTEXTS.get(server)
    if ctx is None:
        return True
    ctx.shutting_down = True
    deadline = time.monotonic() + grace
    while ctx.inflight and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter, polled)
        await asyncio.sleep(0.05)
    return ctx.inflight == 0


MAX_FUTURE_RELEASE = 60 * 24 * 3600  # 60 days, as mox
NOTIFY_VALUES = {"SUCCESS", "FAILURE", "DELAY"}


async def read_data(
    stream: asyncio.StreamReader, reader: DataReader, progress: Callable[[], None]
) -> None:
    """Read the DATA of a message from the stream into `reader`, up to its end.

    Read in runs of lines up to the next ".\r\n": that is the end of the data when its dot
    starts a line (RFC 5321 §4.1.1.4; DataReader decides), else a line ending in a dot. Line by
    line, reading was ~12 % of the server's CPU for a 4 KiB message and a quarter for 64 KiB
    (bench/PROFILE.md). Without a ".\r\n" within the stream's limit, what is buffered is taken
    as lines and a piece of one; readuntil then leaves the last two octets in the buffer, so a
    piece never ends inside a ".\r\n" (which DataReader would not see as the end)."""
    while not reader.done:
        try:
            chunk = await stream.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as e:
            chunk = await stream.readexactly(max(1, e.consumed))
        progress()
        reader.feed_lines(chunk)


class _NoHooks:
    """aiosmtpd wants a handler object; all our logic lives in MoxSMTP and the pipeline."""


class MoxSMTP(SMTP):
    # The limit of aiosmtpd's StreamReader (its default: 1001, a command line). Lines are still
    # limited as aiosmtpd does (command_size_limit, 512 for commands, RFC 5321 §4.5.3.1.4), and
    # longer DATA lines are read in pieces as before. The reader also stops reading the socket
    # when twice this much is buffered: at 1001 a 4 KiB message paused and resumed the transport
    # a few times per message (bench/PROFILE.md).
    line_length_limit = 64 * 1024

    def __init__(self, ctx: ServerContext, tls_context: ssl.SSLContext | None, **kwargs: Any):
        self.ctx = ctx
        self.conn = Conn(remote_ip="")
        self.txn: Transaction | None = None
        self._txn_started = 0.0
        self._counted_ip: str | None = None
        super().__init__(
            _NoHooks(),
            hostname=ctx.hostname,
            ident="ESMTP mox",
            data_size_limit=ctx.max_message_size,
            enable_SMTPUTF8=True,
            tls_context=tls_context,
            auth_required=False,
            auth_require_tls=False,
            auth_exclude_mechanism=["PLAIN", "LOGIN"],
            **kwargs,
        )

    # --- connection ---

    async def _handle_client(self) -> None:
        assert self.session is not None  # noqa: S101 (set by connection_made)
        peer = self.session.peer
        ip = str(peer[0]) if peer else ""
        self.conn.remote_ip = ip
        self._note_tls()
        if not self.ctx.limiter.open(ip):
            log.info("connection refused, too many", extra={"ip": ip})
            await super().push("421 4.7.0 too many connections from your network, try later")
            if self.transport is not None:
                self.transport.close()
            return
        self._counted_ip = ip
        if self.ctx.submission and self.ctx.authenticator.throttled(ip):
            await super().push("421 4.7.0 too many authentication failures, try later")  # as mox
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted_ip is not None:
            self.ctx.limiter.close(self._counted_ip)
            self._counted_ip = None
        super().connection_lost(error)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._original_transport is not None:  # the second call: after STARTTLS
            self._note_tls()
            # RFC 3207 §4.2: forget what the client said before TLS, its login included.
            self.conn.ehlo = ""
            self.conn.account = None

    def _ssl_object(self) -> ssl.SSLObject | ssl.SSLSocket | None:
        if self.transport is None:
            return None
        obj = self.transport.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject | ssl.SSLSocket) else None

    def _note_tls(self) -> None:
        obj = self._ssl_object()
        if obj is not None:
            self.conn.tls_version = obj.version() or "TLS"
            cipher = obj.cipher()
            self.conn.tls_cipher = cipher[0] if cipher else ""

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()  # type: ignore[no-untyped-call]
        self.txn = None

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and self.session is not None and self.session.extended_smtp:
            status = with_enhanced(status)
        if self.conn.auth_failures > 3:
            await asyncio.sleep(1)  # slow mode after repeated failed logins (as mox)
        await super().push(status)

    async def reply(self, r: SmtpReply) -> None:
        await self.push(r.line())

    async def _readline(self) -> bytes | None:
        """A line for AUTH continuations; None when the connection is gone or it is too long."""
        try:
            return (await self._reader.readuntil(b"\n")).rstrip(b"\r\n")
        except asyncio.LimitOverrunError:
            return None
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    # --- commands ---

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not hostname:
            await self.push("501 5.5.4 missing hostname")
            return
        assert self.session is not None  # noqa: S101
        self._set_rset_state()  # type: ignore[no-untyped-call]
        self.session.extended_smtp = True
        self.session.host_name = hostname
        self.conn.ehlo = hostname
        ctx, conn = self.ctx, self.conn
        lines = [ctx.hostname, "PIPELINING", f"SIZE {ctx.max_message_size}"]
        if self.tls_context is not None and not conn.tls:
            lines.append("STARTTLS")
        elif conn.tls:
            lines.append("REQUIRETLS")  # RFC 8689 §4: offered over TLS only
        if ctx.submission and (conn.tls or not ctx.require_tls_for_auth):
            mechs = [m for m in MECHANISMS if conn.tls or not m.endswith("-PLUS")]
            lines.append("AUTH " + " ".join(mechs))
        if ctx.submission and ctx.queue is not None:
            # RFC 4865 §3: maximum interval in seconds and the latest release time (as mox).
            until = datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_RELEASE)
            lines.append(f"FUTURERELEASE {MAX_FUTURE_RELEASE} {until:%Y-%m-%dT%H:%M:%SZ}")
        lines += [
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "CHUNKING",
            "DSN",
            f"LIMITS RCPTMAX={ctx.config.config.limits.max_recipients}",
            "SMTPUTF8",
        ]
        text = "\r\n".join([f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"])
        await super().push(text)

    @syntax("STARTTLS")
    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if self.conn.tls:
            await self.push("503 5.5.1 already speaking TLS")
            return
        if self.txn is not None:
            await self.push("503 5.5.1 STARTTLS not allowed during a mail transaction")
            return
        await super().smtp_STARTTLS(arg)

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str | None) -> None:
        ctx = self.ctx
        check = ctx.kind == "smtp" and ctx.resolver is not None and not ctx.localserve
        # As mox: a HELO (not EHLO) name must resolve; old software that says HELO often says
        # nonsense. Address literals are left alone.
        if hostname and check and ctx.resolver is not None and not hostname.startswith("["):
            try:
                ips, _ = await lookup_ips(ctx.resolver, hostname)
            except DnsError:
                await self.push("451 4.4.3 temporary error looking up the HELO name")
                return
            except ValueError:
                ips = []
            if not ips:
                await self.push("550 5.7.1 HELO name does not resolve")
                return
        await super().smtp_HELO(hostname)
        if self.session is not None and self.session.host_name:
            self.conn.ehlo = self.session.host_name

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None) -> None:
        await self.push("252 2.5.0 no verify but will try delivery")  # as mox

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        try:
            await self._mail(arg or "")
        except SmtpReply as r:
            self.txn = None
            await self.reply(r)

    async def _mail(self, arg: str) -> None:
        ctx, conn = self.ctx, self.conn
        if ctx.shutting_down:
            raise SmtpReply(421, "4.3.2", "shutting down")  # as mox
        if self.txn is not None:
            raise SmtpReply(503, "5.5.1", "already have MAIL")  # RFC 5321 §4.1.4
        if ctx.submission and conn.account is None:
            raise SmtpReply(530, "5.7.0", "authentication required")  # RFC 4954 §6
        if arg[:5].upper() != "FROM:":
            raise SmtpReply(501, "5.5.2", "expected MAIL FROM:<address>")
        rest = arg[5:]
        if rest.startswith(" "):
            if ctx.pedantic:
                raise SmtpReply(501, "5.5.2", "no space allowed after FROM:")
            rest = rest.lstrip(" ")  # Outlook sends it (as mox, non-pedantic)
        try:
            addr, params_text = parse_path(rest, utf8=True, allow_null=True)
        except AddressError as e:
            raise SmtpReply(501, "5.1.7", f"bad sender address: {e}") from None
        txn = Transaction(mail_from=addr, mail_from_text=str(addr) if addr else "")
        self._mail_params(txn, params_text)
        if ctx.pedantic and addr is not None and addr.needs_smtputf8 and not txn.smtputf8:
            raise SmtpReply(553, "5.6.7", "non-ASCII address requires SMTPUTF8")  # RFC 6531 §3.5
        self.txn = txn
        self._txn_started = time.monotonic()
        await check_mail_from(ctx, conn, txn)
        await self.push("250 2.1.0 OK")

    def _mail_params(self, txn: Transaction, text: str) -> None:
        try:
            params = parse_params(text)
        except ParamError as e:
            raise SmtpReply(501, "5.5.4", str(e)) from None
        seen: set[str] = set()
        for key, value in params:
            if key in seen:
                raise SmtpReply(501, "5.5.4", f"duplicate parameter {key}")
            seen.add(key)
            if key == "SIZE":  # RFC 1870 §6
                if value is None or not value.isdigit():
                    raise SmtpReply(501, "5.5.4", "bad SIZE")
                txn.declared_size = int(value)
                if txn.declared_size > self.ctx.max_message_size:
                    raise SmtpReply(552, "5.3.4", "message too large")
            elif key == "BODY":  # RFC 6152 §2
                body = (value or "").upper()
                if body not in ("7BIT", "8BITMIME"):
                    raise SmtpReply(555, "5.5.4", "BODY must be 7BIT or 8BITMIME")
                txn.body = "8BITMIME" if body == "8BITMIME" else "7BIT"
            elif key == "SMTPUTF8":  # RFC 6531 §3.4
                if value is not None:
                    raise SmtpReply(501, "5.5.4", "SMTPUTF8 takes no value")
                txn.smtputf8 = True
            elif key == "REQUIRETLS":  # RFC 8689 §4.1
                if value is not None:
                    raise SmtpReply(501, "5.5.4", "REQUIRETLS takes no value")
                if not self.conn.tls:
                    raise SmtpReply(530, "5.7.10", "REQUIRETLS needs a TLS connection")
                txn.requiretls = True
            elif key == "RET":  # RFC 3461 §4.3
                ret = (value or "").upper()
                if ret not in ("FULL", "HDRS"):
                    raise SmtpReply(501, "5.5.4", "RET must be FULL or HDRS")
                txn.ret = "FULL" if ret == "FULL" else "HDRS"
            elif key == "ENVID":  # RFC 3461 §4.4
                try:
                    envid = xtext_decode(value or "")
                except ParamError as e:
                    raise SmtpReply(501, "5.5.4", f"bad ENVID: {e}") from None
                if not envid or len(envid) > 100:
                    raise SmtpReply(501, "5.5.4", "ENVID must be 1 to 100 characters")
                txn.envid = envid
            elif key == "AUTH":  # RFC 4954 §5: may be ignored
                continue
            elif key in ("HOLDFOR", "HOLDUNTIL") and self.ctx.submission and self.ctx.queue:
                txn.hold_until = self._future_release(key, value or "", seen)
            else:
                raise SmtpReply(555, "5.5.4", f"unrecognized parameter {key}")  # RFC 5321 §4.1.1.11

    @staticmethod
    def _future_release(key: str, value: str, seen: set[str]) -> datetime:
        """HOLDFOR=seconds or HOLDUNTIL=date-time (RFC 4865 §4), at most 60 days ahead."""
        if {"HOLDFOR", "HOLDUNTIL"} <= seen:
            raise SmtpReply(501, "5.5.4", "HOLDFOR and HOLDUNTIL together")  # RFC 4865 §4
        now = datetime.now(UTC)
        if key == "HOLDFOR":
            if not value.isdigit() or int(value) > MAX_FUTURE_RELEASE:
                raise SmtpReply(501, "5.5.4", f"HOLDFOR must be 0 to {MAX_FUTURE_RELEASE} seconds")
            return now + timedelta(seconds=int(value))
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))  # RFC 3339
        except ValueError:
            raise SmtpReply(501, "5.5.4", "HOLDUNTIL must be an RFC 3339 date-time") from None
        if when.tzinfo is None or when > now + timedelta(seconds=MAX_FUTURE_RELEASE):
            raise SmtpReply(501, "5.5.4", "HOLDUNTIL needs a time zone, at most 60 days ahead")
        return when

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        try:
            await self._rcpt(arg or "")
        except SmtpReply as r:
            await self.reply(r)

    async def _rcpt(self, arg: str) -> None:
        ctx, txn = self.ctx, self.txn
        if txn is None:
            raise SmtpReply(503, "5.5.1", "need MAIL first")
        if txn.bdat is not None:
            raise SmtpReply(503, "5.5.1", "RCPT not allowed during BDAT")
        if arg[:3].upper() != "TO:":
            raise SmtpReply(501, "5.5.2", "expected RCPT TO:<address>")
        rest = arg[3:]
        if rest.startswith(" "):
            if ctx.pedantic:
                raise SmtpReply(501, "5.5.2", "no space allowed after TO:")
            rest = rest.lstrip(" ")
        rcpt: Recipient
        if rest[:12].lower() == "<postmaster>":
            # RFC 5321 §4.1.1.3: "<Postmaster>" without domain must be accepted.
            addr = Address("postmaster", ctx.hostname)
            params_text = rest[12:].strip()
            rcpt = Recipient(addr, "postmaster", ctx.config.config.postmaster)
        else:
            try:
                parsed, params_text = parse_path(rest, utf8=True)
            except AddressError as e:
                raise SmtpReply(501, "5.1.3", f"bad recipient address: {e}") from None
            if parsed is None:  # allow_null is off, so this does not happen
                raise SmtpReply(501, "5.1.3", "empty recipient")
            addr = parsed
            rcpt = Recipient(addr, str(addr), None)
        notify, orcpt = self._rcpt_params(params_text)
        if rcpt.account is None:
            rcpt = await resolve_recipient(ctx, self.conn, txn, addr, str(addr))
        rcpt.notify, rcpt.orcpt = notify, orcpt
        txn.recipients.append(rcpt)
        await self.push("250 2.1.5 OK")

    def _rcpt_params(self, text: str) -> tuple[list[str] | None, str | None]:
        try:
            params = parse_params(text)
        except ParamError as e:
            raise SmtpReply(501, "5.5.4", str(e)) from None
        notify: list[str] | None = None
        orcpt: str | None = None
        seen: set[str] = set()
        for key, value in params:
            if key in seen:
                raise SmtpReply(501, "5.5.4", f"duplicate parameter {key}")
            seen.add(key)
            if key == "NOTIFY":  # RFC 3461 §4.1
                words = (value or "").upper().split(",")
                if words != ["NEVER"] and (not set(words) <= NOTIFY_VALUES or "" in words):
                    raise SmtpReply(501, "5.5.4", "NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY")
                notify = words
            elif key == "ORCPT":  # RFC 3461 §4.2: addr-type ";" xtext
                addr_type, semi, xtext = (value or "").partition(";")
                if not semi or not addr_type:
                    raise SmtpReply(501, "5.5.4", "ORCPT must be addr-type;address")
                try:
                    orcpt = f"{addr_type};{xtext_decode(xtext)}"
                except ParamError as e:
                    raise SmtpReply(501, "5.5.4", f"bad ORCPT: {e}") from None
            else:
                raise SmtpReply(555, "5.5.4", f"unrecognized parameter {key}")
        return notify, orcpt

    def _remaining(self) -> float:
        return max(1.0, self.ctx.transaction_timeout - (time.monotonic() - self._txn_started))

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        self.ctx.inflight += 1  # a shutdown waits for these (graceful drain)
        try:
            await self._data(arg)
        finally:
            self.ctx.inflight -= 1

    async def _data(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        txn = self.txn
        if arg:
            await self.push("501 5.5.4 DATA takes no arguments")
            return
        if txn is None:
            await self.push("503 5.5.1 need MAIL first")
            return
        if txn.bdat is not None:
            await self.push("503 5.5.1 DATA not allowed after BDAT")  # RFC 3030 §2
            return
        if not txn.recipients:
            await self.push("554 5.5.1 no valid recipients")  # RFC 5321 §3.3
            return
        await self.push("354 see you at the bare dot")  # as mox
        reader = DataReader(self.ctx.max_message_size)
        last_reset = time.monotonic()

        def progress() -> None:
            nonlocal last_reset
            now = time.monotonic()
            if now - last_reset >= 1.0:
                # The idle timer, not per read: re-arming it is a timer handle each time
                # (bench/PROFILE.md); a second's precision is plenty.
                self._reset_timeout()
                last_reset = now

        try:
            async with asyncio.timeout(self._remaining()):
                await read_data(self._reader, reader, progress)
                self._reset_timeout()
        except TimeoutError:
            await self.push("421 4.4.2 transaction took too long")
            if self.transport is not None:
                self.transport.close()
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if reader.bare_cr_lf:
            # As mox since v0.0.9: no SMTP smuggling (a second message hidden in the data).
            self._set_post_data_state()
            await self.push("500 5.5.2 invalid bare \\r or \\n, may be smtp smuggling")
            return
        if reader.too_big:
            self._set_post_data_state()
            await self.push("552 5.3.4 message too large")  # RFC 1870 §6.3
            return
        if reader.eight_bit and txn.body == "7BIT" and self.ctx.pedantic:
            self._set_post_data_state()
            await self.push("554 5.6.0 8-bit data without BODY=8BITMIME")  # RFC 6152 §3
            return
        await self._finish(txn, reader.result())

    async def _finish(self, txn: Transaction, data: bytes) -> None:
        started = time.monotonic()
        try:
            line = await deliver_message(self.ctx, self.conn, txn, data)
            self.conn.good_transactions += 1
        except SmtpReply as r:
            line = r.line()
            self.conn.failed_transactions += 1
        except Exception:
            log.exception("delivery failed")
            # A temporary fault (disk, database) is never a 5xx: the sender keeps the message.
            line = "451 4.3.0 error processing message, try again later"
            self.conn.failed_transactions += 1
        metrics.smtp_transaction(self.ctx.kind, line, time.monotonic() - started)
        self._set_post_data_state()
        await self.push(line)
        if (
            self.conn.failed_transactions > MAX_BOGUS_TRANSACTIONS
            and self.conn.good_transactions == 0
        ):
            await self.push("421 4.7.0 too many failures, bye")  # as mox
            if self.transport is not None:
                self.transport.close()

    @syntax("BDAT size [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        self.ctx.inflight += 1
        try:
            await self._bdat(arg)
        finally:
            self.ctx.inflight -= 1

    async def _bdat(self, arg: str | None) -> None:
        # RFC 3030 §2: the chunk is read whatever happens, so the connection stays in sync.
        words = (arg or "").split()
        if (
            not 1 <= len(words) <= 2
            or not words[0].isdigit()
            or (len(words) == 2 and words[1].upper() != "LAST")
        ):
            await self.push("421 4.5.4 malformed BDAT, cannot find the end of the chunk")
            if self.transport is not None:
                self.transport.close()
            return
        size = int(words[0])
        last = len(words) == 2
        txn = self.txn
        keep = txn is not None and bool(txn.recipients) and self.session is not None
        if keep and txn is not None and txn.bdat is None:
            txn.bdat = bytearray()
        try:
            async with asyncio.timeout(self._remaining() if keep else 300):
                left = size
                while left:
                    piece = await self._reader.readexactly(min(left, 65536))
                    left -= len(piece)
                    self._reset_timeout()
                    if keep and txn is not None and txn.bdat is not None and not txn.bdat_too_big:
                        if len(txn.bdat) + len(piece) > self.ctx.max_message_size:
                            txn.bdat_too_big = True
                            txn.bdat.clear()
                        else:
                            txn.bdat += piece
        except TimeoutError:
            await self.push("421 4.4.2 transaction took too long")
            if self.transport is not None:
                self.transport.close()
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if txn is None:
            await self.push("503 5.5.1 need MAIL first")
            return
        if not txn.recipients:
            await self.push("554 5.5.1 no valid recipients")
            return
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        if txn.bdat_too_big:
            self._set_post_data_state()
            await self.push("552 5.3.4 message too large")
            return
        await self._finish(txn, bytes(txn.bdat or b""))

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str | None) -> None:
        ctx, conn = self.ctx, self.conn
        if not ctx.submission:
            await self.push("502 5.5.1 AUTH only on submission")
            return
        if self.session is None or not self.session.extended_smtp:
            await self.push("503 5.5.1 send EHLO first")
            return
        if ctx.require_tls_for_auth and not conn.tls:
            await self.push("538 5.7.11 authentication requires TLS")  # RFC 4954 §6
            return
        if conn.account is not None:
            await self.push("503 5.5.1 already authenticated")  # RFC 4954 §4
            return
        if self.txn is not None:
            await self.push("503 5.5.1 no AUTH during a mail transaction")  # RFC 4954 §4
            return
        words = (arg or "").split()
        if not 1 <= len(words) <= 2:
            await self.push("501 5.5.4 expected: AUTH mechanism [initial-response]")
            return
        name = words[0].upper()
        initial: bytes | None = None
        if len(words) == 2:
            initial = b"" if words[1] == "=" else self._b64(words[1])  # RFC 4954 §4
            if initial is None:
                await self.push("501 5.5.2 invalid base64")
                return
        await self._mox_authenticate(name, initial)

    @staticmethod
    def _b64(text: str) -> bytes | None:
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return None

    async def _mox_authenticate(self, name: str, initial: bytes | None) -> None:
        ctx, conn = self.ctx, self.conn
        ip = conn.remote_ip
        mech: PlainServer | LoginServer | ScramServer | CramMD5Server | None
        if name == "PLAIN":
            mech = PlainServer()
        elif name == "LOGIN":
            mech = LoginServer()
        else:
            sctx = SaslContext(
                lookup=ctx.authenticator.credentials,
                channel_bindings=channel_bindings(self._ssl_object()),
                hostname=ctx.hostname,
                plus_advertised=conn.tls,
            )
            mech = new_mechanism(name, sctx) if name in MECHANISMS else None
        if mech is None:
            await self.push("504 5.5.4 unrecognized authentication mechanism")
            return
        username = ""
        try:
            result = mech.start(initial)
            while isinstance(result, SaslChallenge):
                await self.push("334 " + base64.b64encode(result.data).decode())
                line = await self._readline()
                if line is None:
                    return
                if line == b"*":
                    await self.push("501 5.0.0 authentication aborted")  # RFC 4954 §4
                    return
                data = self._b64(line.decode("ascii", "replace"))
                if data is None:
                    await self.push("501 5.5.2 invalid base64")
                    return
                result = mech.step(data)
        except SaslError as e:
            log.info("authentication protocol error", extra={"mech": name, "err": str(e)})
            account = await ctx.authenticator.conclude("", False, remote_ip=ip, protocol="smtp")
            conn.auth_failures += 1
            await self.push("501 5.5.2 malformed authentication data")
            return
        if isinstance(result, SaslDone):
            username = result.username
            account = await ctx.authenticator.login(
                result.username, result.password, remote_ip=ip, protocol="smtp"
            )
        else:
            assert isinstance(result, SaslVerified)  # noqa: S101 (the loop leaves no other)
            username = result.username
            account = await ctx.authenticator.conclude(
                result.username, result.ok, remote_ip=ip, protocol="smtp"
            )
        if account is None:
            conn.auth_failures += 1
            log.info("authentication failed", extra={"mech": name, "username": username, "ip": ip})
            await self.push("535 5.7.8 bad user/pass")  # as mox
            return
        conn.account = account
        if self.session is not None:
            self.session.authenticated = True
            self.session.auth_data = account  # type: ignore[assignment]
        log.info("authenticated", extra={"mech": name, "username": username, "account": account})
        await self.push("235 2.7.0 hello " + account)


async def start_smtp_server(
    *,
    host: str,
    port: int,
    kind: SmtpKind,
    config: LoadedConfig,
    store: Store,
    authenticator: Authenticator,
    hostname: str,
    ssl_context: ssl.SSLContext | None,
    require_starttls: bool,
    max_message_size: int,
    limiter: ConnectionLimiter | None = None,
    localserve: bool = False,
    unknown_recipient_delay: float = 5.0,
    resolver: Resolver | None = None,
    reports: ReportDB | None = None,
    dns_comment: str = "",
    queue: Queue | None = None,
) -> asyncio.Server:
    """Listen for SMTP of the given kind; `ssl_context` is for STARTTLS, or implicit TLS on 465."""
    loop = asyncio.get_running_loop()
    implicit = kind == "submissions"
    ctx = ServerContext(
        kind=kind,
        config=config,
        store=store,
        authenticator=authenticator,
        hostname=hostname,
        max_message_size=max_message_size,
        limiter=limiter or ConnectionLimiter(),
        localserve=localserve,
        require_tls_for_auth=require_starttls and not implicit,
        tls_available=ssl_context is not None,
        unknown_recipient_delay=unknown_recipient_delay,
        resolver=resolver,
        reports=reports,
        dns_comment=dns_comment,
        queue=queue,
    )

    def factory() -> MoxSMTP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # aiosmtpd's notes on settings we handle ourselves
            return MoxSMTP(
                ctx,
                None if implicit else ssl_context,
                # Port 25 may insist on STARTTLS before mail (RFC 3207 §4); for submission the
                # insistence is on AUTH, and MAIL needs AUTH.
                require_starttls=kind == "smtp" and require_starttls and ssl_context is not None,
                timeout=300,
                loop=loop,
            )

    server = await loop.create_server(
        factory, host, port, ssl=ssl_context if implicit else None, reuse_address=True
    )
    CONTEXTS[server] = ctx
    log.info("listening", extra={"service": kind, "address": f"{host}:{port}"})
    return server
