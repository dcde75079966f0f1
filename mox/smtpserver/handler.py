"""SMTP policy for incoming mail and submission, behind aiosmtpd's `handle_*` hooks.

RFC 5321 (SMTP), RFC 6409 (submission), RFC 4954 (AUTH).

aiosmtpd parses commands; this module decides. The hooks only call the phases below and turn their
`SmtpReply` into the reply line. Generic text goes to the client, details to the log.

Implementation notes:
- Port 25 accepts mail only for our own domains (no open relay); unknown local users are refused at
  RCPT with 550 5.1.1 for now (the SMTP issue moves that after DATA, as mox does).
- Submission requires AUTH (aiosmtpd enforces it before MAIL); MAIL FROM must be an address of the
  authenticated account.
- Local delivery writes each recipient's copy durably (fsync + commit) before the 250 reply.
- localserve accepts any recipient and delivers it to the account `mox`, as mox's localserve.
"""

from __future__ import annotations

import email.utils
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from mox.config.load import LoadedConfig
from mox.store import MailboxExists, Store

__all__ = ["Handler", "SmtpKind", "SmtpReply"]

log = logging.getLogger(__name__)

SmtpKind = Literal["smtp", "submission", "submissions"]
LOCALSERVE_ACCOUNT = "mox"


class SmtpReply(Exception):
    """A reply to send instead of going on: code, enhanced status code (RFC 3463), text."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    def line(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    account: str
    mailbox: str


@dataclass
class TransactionState:
    recipients: list[Recipient] = field(default_factory=list)


class Handler:
    """aiosmtpd handler: calls the policy phases and delivers into the store."""

    def __init__(
        self,
        *,
        kind: SmtpKind,
        config: LoadedConfig,
        store: Store,
        hostname: str,
        localserve: bool = False,
    ) -> None:
        self.kind = kind
        self.config = config
        self.store = store
        self.hostname = hostname
        self.localserve = localserve

    # --- aiosmtpd hooks: each turns a SmtpReply into a line. ---

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        lines = [r for r in responses if r[4:].split(" ")[0].upper() not in ("AUTH", "HELP")]
        if self.kind != "smtp":  # RFC 4954: AUTH only for submission
            lines += [r for r in responses if r[4:].upper().startswith("AUTH ")]
        # RFC 2920: aiosmtpd reads commands one after another from its buffer, so pipelined
        # commands work; announce it after the host name line. The last line has "250 ".
        lines = [lines[0], "250-PIPELINING", *lines[1:]]
        return [*(f"250-{x[4:]}" for x in lines[:-1]), f"250 {lines[-1][4:]}"]

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        try:
            self._check_mail_from(session, address)
        except SmtpReply as reply:
            return reply.line()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.mox = TransactionState()
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        state: TransactionState = getattr(envelope, "mox", None) or TransactionState()
        envelope.mox = state
        try:
            if len(state.recipients) >= self.config.config.limits.max_recipients:
                # RFC 5321 §4.5.3.1.8, RFC 9422 LIMITS RCPTMAX
                raise SmtpReply(452, "4.5.3", "too many recipients")
            rcpt = self._recipient(session, address)
        except SmtpReply as reply:
            log.info("recipient refused", extra={"rcpt": address, "reply": reply.line()})
            return reply.line()
        state.recipients.append(rcpt)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        state: TransactionState = getattr(envelope, "mox", None) or TransactionState()
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        try:
            delivered = await self._deliver(session, envelope.mail_from, state.recipients, data)
        except SmtpReply as reply:
            return reply.line()
        except Exception:
            log.exception("delivery failed")
            return "451 4.3.0 error delivering message, try again later"
        return f"250 2.0.0 OK, delivered ({delivered})"

    # --- phases ---

    def _check_mail_from(self, session: Any, address: str) -> None:
        if self.kind == "smtp":
            return
        account = session.auth_data
        if self.localserve:
            return
        target = self.config.lookup(address) if address else None
        if target is None or target.account != account:
            raise SmtpReply(550, "5.7.1", "must match authenticated user")  # as mox

    def _recipient(self, session: Any, address: str) -> Recipient:
        if "@" not in address and address.lower() != "postmaster":
            raise SmtpReply(501, "5.1.3", "bad recipient address syntax")
        if self.localserve:
            target = self.config.lookup(address)
            if target is None:
                return Recipient(address, LOCALSERVE_ACCOUNT, "Inbox")
            return Recipient(address, target.account, target.destination.mailbox)
        target = self.config.lookup(address)
        if target is not None:
            return Recipient(address, target.account, target.destination.mailbox)
        domain = address.rpartition("@")[2].lower()
        ours = domain in self.config.config.domains
        if self.kind != "smtp" and not ours:
            # No outgoing queue yet: say so instead of pretending to send.
            raise SmtpReply(
                550, "5.7.0", "delivery to other domains is not available on this server yet"
            )
        if ours:
            raise SmtpReply(550, "5.1.1", "no such user")
        raise SmtpReply(550, "5.7.1", "not accepting email for domain")  # no open relay

    def _received(self, session: Any, rcpt: str, ident: str) -> bytes:
        # RFC 5321 §4.4 trace field; RFC 3848 "with" protocol types.
        with_ = "ESMTP"
        if getattr(session, "ssl", None) is not None or self.kind == "submissions":
            with_ += "S"
        if session.authenticated:
            with_ += "A"
        peer = session.peer[0] if session.peer else "unknown"
        helo = session.host_name or "unknown"
        # Submission hides the client's address, as mox.
        source = f"{helo} ({peer})" if self.kind == "smtp" else self.hostname
        date = email.utils.formatdate(localtime=False, usegmt=False)
        return (
            f"Received: from {source} by {self.hostname} (mox) with {with_} id {ident}\r\n"
            f"\tfor <{rcpt}>; {date}\r\n"
        ).encode()

    async def _deliver(
        self, session: Any, mail_from: str, recipients: list[Recipient], data: bytes
    ) -> str:
        if not recipients:
            raise SmtpReply(503, "5.5.1", "no valid recipients")
        ident = secrets.token_urlsafe(9)
        for rcpt in recipients:
            account = self.store.account(rcpt.account)
            msg = self._received(session, rcpt.address, ident) + data
            mailbox = rcpt.mailbox
            if account.get_mailbox(mailbox) is None:
                try:
                    await account.create_mailbox(mailbox)
                except MailboxExists:
                    pass
            stored = await account.deliver(mailbox, msg)
            log.info(
                "delivered",
                extra={
                    "id": ident,
                    "account": rcpt.account,
                    "mailbox": mailbox,
                    "uid": stored.uid,
                    "size": len(msg),
                    "mailfrom": mail_from,
                    "rcpt": rcpt.address,
                },
            )
        return ident
