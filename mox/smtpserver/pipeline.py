"""Inbound and submission policy as phases: MAIL, RCPT, then the message (maddy's pipeline shape).

Each phase raises `SmtpReply` to refuse; the server renders it once. Texts to the client are
generic; details go to the log.

Implementation notes:
- No open relay: on port 25 only our domains are accepted (RFC 5321 §3.6.2 says relaying is a
  policy choice; ours is none), and mail to other domains is refused at RCPT.
- Unknown local users are accepted at RCPT and refused after DATA with a delay, so the server does
  not reveal which addresses exist (as mox).
- Submission: MAIL FROM must be an address of the authenticated account or an alias that allows
  it (as mox); per-account daily limits for messages and first-time recipients.
- localserve simulates failures with magic local parts, as mox's localserve. Submissions to
  other domains, and to `queue…` local parts, go through the queue, which delivers them to
  localserve's own SMTP port (where a `queue…` address then gets its simulated failure).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

from mox.smtp.address import Address
from mox.smtp.codes import SmtpReply
from mox.smtpserver.mailauth import check_sender_domain
from mox.smtpserver.state import Conn, Recipient, ServerContext, Transaction

__all__ = [
    "alias_accounts",
    "check_mail_from",
    "localserve_code",
    "report_address",
    "resolve_recipient",
    "sender_allowed",
    "simulate",
]

log = logging.getLogger(__name__)

LOCALSERVE_ACCOUNT = "mox"
_LOCALSERVE_CODE = re.compile(r"([45][0-9][0-9])$")


def localserve_code(localpart: str) -> int | None:
    """localserve's simulated failures (as mox): ...temperror → 451, ...permerror → 550,
    ...NNN with N a 4xx or 5xx code → that code, ...timeout → -1 (hang)."""
    lp = localpart.lower()
    if lp.endswith("temperror"):
        return 451
    if lp.endswith("permerror"):
        return 550
    if lp.endswith("timeout"):
        return -1
    m = _LOCALSERVE_CODE.search(lp)
    return int(m.group(1)) if m else None


async def simulate(code: int, ctx: ServerContext) -> None:
    if code == -1:
        await asyncio.sleep(ctx.transaction_timeout)  # "timeout": hang until the cap
        raise SmtpReply(421, "4.4.2", "timeout simulated by localserve")
    if code >= 500:
        raise SmtpReply(code, "5.0.0", "failure simulated by localserve")
    raise SmtpReply(code, "4.0.0", "temporary failure simulated by localserve")


def sender_allowed(ctx: ServerContext, account: str, address: Address) -> bool:
    cfg = ctx.config
    target = cfg.lookup(str(address))
    if target is not None and target.account == account and not target.address.startswith("@"):
        return True
    alias = cfg.lookup_alias(str(address))
    if alias is not None and alias[1].allow_msg_from:
        members = {cfg.lookup(m) for m in alias[1].addresses}
        return any(t is not None and t.account == account for t in members)
    return False


async def check_mail_from(ctx: ServerContext, conn: Conn, txn: Transaction) -> None:
    """MAIL phase."""
    addr = txn.mail_from
    if ctx.localserve and addr is not None and addr.localpart.lower().startswith("mailfrom"):
        code = localserve_code(addr.localpart)
        if code is not None:
            await simulate(code, ctx)
    if not ctx.submission:
        if addr is not None and addr.literal and not ctx.localserve:
            raise SmtpReply(550, "5.1.8", "address literals not accepted as sender")
        if addr is not None and not ctx.localserve and ctx.resolver is not None:
            # As mox: the sender domain must exist (MX, else A/AAAA); null MX is refused.
            await check_sender_domain(ctx.resolver, addr.domain)
        return
    account = conn.account
    if account is None:
        raise SmtpReply(530, "5.7.0", "authentication required")  # RFC 4954 §6
    if ctx.localserve:
        return
    if addr is None or not sender_allowed(ctx, account, addr):
        raise SmtpReply(550, "5.7.1", "must match authenticated user")  # as mox
    acc_cfg = ctx.config.config.accounts[account]
    limit = acc_cfg.max_outgoing_messages_per_day
    if limit:
        sent, _ = ctx.store.account(account).outgoing_since(datetime.now(UTC) - timedelta(days=1))
        if sent >= limit:
            log.info("outgoing message limit reached", extra={"account": account, "sent": sent})
            raise SmtpReply(451, "4.7.1", "daily limit of outgoing messages reached")


def _first_time_limit(ctx: ServerContext, account: str, txn: Transaction, rcpt: str) -> None:
    limit = ctx.config.config.accounts[account].max_first_time_recipients_per_day
    if not limit:
        return
    acc = ctx.store.account(account)
    if acc.has_sent_to(rcpt):
        return
    _, first = acc.outgoing_since(datetime.now(UTC) - timedelta(days=1))
    pending = sum(1 for r in txn.recipients if not acc.has_sent_to(r.text))
    if first + pending >= limit:
        log.info("first-time recipient limit reached", extra={"account": account})
        raise SmtpReply(451, "4.7.1", "daily limit of new recipients reached")


async def resolve_recipient(
    ctx: ServerContext, conn: Conn, txn: Transaction, addr: Address, text: str
) -> Recipient:
    """RCPT phase: where the recipient's mail goes, or a refusal."""
    cfg = ctx.config
    limit = cfg.config.limits.max_recipients
    if len(txn.recipients) >= limit:
        raise SmtpReply(452, "4.5.3", "too many recipients")  # RFC 5321 §4.5.3.1.10, RFC 9422
    if txn.mail_from is None and txn.recipients and not ctx.submission:
        # A bounce goes to one address; more is how backscatter spam looks (as mox).
        raise SmtpReply(452, "4.5.3", "only one recipient allowed with null reverse-path")
    if ctx.localserve:
        code = localserve_code(addr.localpart)
        if code is not None and addr.localpart.lower().startswith("rcptto"):
            await simulate(code, ctx)
        if ctx.submission and ctx.queue is not None:
            if addr.localpart.lower().startswith("queue"):
                # As mox: "queue…" is accepted now; the queue's delivery to our own SMTP port
                # then gets the failure its suffix asks for.
                return Recipient(addr, text, None, remote=True)
            if addr.domain not in cfg.config.domains:
                # As mox: other domains go through the queue, which delivers to ourselves.
                return Recipient(addr, text, None, remote=True, localserve_code=code)
        target = cfg.lookup(str(addr))
        if target is None:
            return Recipient(addr, text, LOCALSERVE_ACCOUNT, localserve_code=code)
        return Recipient(
            addr, text, target.account, target.destination.mailbox, localserve_code=code
        )
    if addr.literal:
        raise SmtpReply(550, "5.1.2", "address literals not accepted as recipient")
    ours = addr.domain in cfg.config.domains
    if ctx.submission and conn.account is not None:
        _first_time_limit(ctx, conn.account, txn, str(addr))
        if not ours:
            if ctx.queue is None:
                raise SmtpReply(550, "5.7.0", "this server has no outgoing queue")
            if await ctx.queue.suppressed(conn.account, str(addr)):  # earlier hard bounce
                raise SmtpReply(550, "5.1.1", "recipient is on this account's suppression list")
            return Recipient(addr, text, None, remote=True)  # the queue delivers it
    if not ours:
        raise SmtpReply(550, "5.7.1", "not accepting email for domain")  # no open relay
    if cfg.config.domains[addr.domain].disabled:
        raise SmtpReply(450, "4.2.1", "recipient domain temporarily disabled")  # as mox
    report = report_address(ctx, addr)
    if report is not None:
        return report
    alias = cfg.lookup_alias(str(addr))
    if alias is not None:
        name, settings = alias
        sender = txn.mail_from
        members = {t.account for t in (cfg.lookup(m) for m in settings.addresses) if t}
        if not settings.post_public:
            sender_target = cfg.lookup(str(sender)) if sender is not None else None
            if sender_target is None or sender_target.account not in members:
                raise SmtpReply(550, "5.7.1", "not allowed to send to this list")
        return Recipient(addr, text, None, alias=name)
    target = cfg.lookup(str(addr))
    if target is None:
        log.info("unknown recipient, refused after data", extra={"rcpt": text})
        return Recipient(addr, text, None)
    return Recipient(addr, text, target.account, target.destination.mailbox)


def report_address(ctx: ServerContext, addr: Address) -> Recipient | None:
    """A domain's DMARC or TLS report address: into the configured account and mailbox."""
    dom = ctx.config.config.domains.get(addr.domain)
    if dom is None:
        return None

    def norm(text: str) -> str:
        return text if dom.localpart_case_sensitive else text.lower()

    if dom.dmarc is not None and norm(addr.localpart) == norm(dom.dmarc.localpart):
        ra = dom.dmarc
        return Recipient(addr, str(addr), ra.account, ra.mailbox, report="dmarc")
    if dom.tlsrpt is not None and norm(addr.localpart) == norm(dom.tlsrpt.localpart):
        ra = dom.tlsrpt
        return Recipient(addr, str(addr), ra.account, ra.mailbox, report="tlsrpt")
    return None


def alias_accounts(ctx: ServerContext, txn: Transaction, rcpt: Recipient) -> list[tuple[str, str]]:
    """(account, mailbox) pairs an alias delivers to: its members, minus the sender and members
    that are also explicit recipients of this transaction (as mox)."""
    cfg = ctx.config
    found = cfg.lookup_alias(rcpt.alias) if rcpt.alias else None
    if found is None:
        return []
    explicit = {r.account for r in txn.recipients if r.alias is None and r.account}
    sender = cfg.lookup(str(txn.mail_from)) if txn.mail_from else None
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for member in found[1].addresses:
        t = cfg.lookup(member)
        if t is None or t.account in seen or t.account in explicit:
            continue
        if sender is not None and sender.account == t.account:
            continue
        seen.add(t.account)
        out.append((t.account, t.destination.mailbox))
    return out
