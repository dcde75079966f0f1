"""The junk decision's hook in SMTP delivery (port 25; submission never filters), in mox's
order (reference §1.2): the destination's rulesets, the DMARC policy, then the junk filter of
accounts that have one.

`decide` gives the verdict for one copy (None: deliver as addressed, nothing to record) and
keeps a refused copy in the account's Rejects mailbox. `conclude` is mox's end of DATA: when
every copy was refused the transaction is refused with their reply (451 for junk, 550 5.7.26 for
a DMARC policy; different replies: one "multiple errors" reply, 554 if any was permanent,
else 451); when only some were refused the others are delivered, the reply is 250, and one DSN
(RFC 3464) about the refused recipients goes to the sender through the queue (RFC 3461 §4.1:
not for NOTIFY without FAILURE, and never to the null reverse-path, RFC 5321 §4.5.5).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from mox.config.model import Destination, Ruleset
from mox.junk import analyze, rulesets
from mox.junk.analyze import Verdict
from mox.queue.dsn import DsnRecipient, compose_dsn
from mox.queue.queue import QueuedRecipient
from mox.smtp.codes import SmtpReply
from mox.smtpserver.state import Conn, Recipient, ServerContext, Transaction

__all__ = ["DMARC_REFUSAL", "conclude", "decide"]

log = logging.getLogger(__name__)

# As mox, RFC 7372 §3.2.
DMARC_REFUSAL = (550, "5.7.26", "DMARC policy rejects message")
# Reasons that skip the first-time-sender delay (mox: forwards and mailing lists).
NO_DELAY_REASONS = frozenset({"list-allow", "subjectpass"})


def dnsbl_zones(ctx: ServerContext) -> list[str]:
    """The DNSBL zones of the config's SMTP listeners, in order, without repeats."""
    zones: list[str] = []
    for listener in ctx.config.config.listeners.values():
        if listener.smtp.enabled:
            zones += [z for z in listener.smtp.dnsbls if z not in zones]
    return zones


def destination_of(ctx: ServerContext, rcpt: Recipient) -> Destination | None:
    """The configured destination of a direct recipient (None for aliases and reports)."""
    if rcpt.account is None or rcpt.alias is not None or rcpt.report is not None:
        return None
    target = ctx.config.lookup(str(rcpt.address))
    return target.destination if target is not None else None


def _accept_reject(verdict: Verdict, rs: Ruleset | None) -> Verdict:
    """mox's AcceptRejectsToMailbox: a refusal becomes delivery, seen, into that mailbox."""
    if rs is None or not rs.accept_rejects_to_mailbox or verdict.accept:
        return verdict
    return dataclasses.replace(
        verdict, accept=True, mailbox=rs.accept_rejects_to_mailbox, seen=True, first_time=False
    )


async def decide(
    ctx: ServerContext,
    conn: Conn,
    txn: Transaction,
    account: str,
    rcpt: Recipient,
    header: bytes,
    copy: bytes,
    meta: dict[str, Any],
    earlier: list[Verdict],
    *,
    dmarc_reject: bool = False,
) -> Verdict | None:
    """The verdict for one copy; `earlier` are the verdicts of this transaction's copies so far
    (the first-time-sender delay is applied once, before the first accepted copy is stored).
    `meta` is the copy's metadata: a forward ruleset marks it (`forward`), as does a mailing
    list (`mailing_list`). `dmarc_reject`: the message failed a DMARC reject policy."""
    if ctx.submission:
        return None
    acc_cfg = ctx.config.config.accounts.get(account)
    dest = destination_of(ctx, rcpt)
    rs = rulesets.match(dest.rulesets, txn.mail_from_text, header, meta) if dest else None
    if rs is not None:
        log.info(
            "ruleset matches",
            extra={"account": account, "rcpt": rcpt.text, "mailbox": rs.mailbox},
        )
        if rs.is_forward:
            meta["forward"] = {"domain": rs.verified_domain}
        if rs.list_allow_domain and rulesets.is_list_domain(rs.list_allow_domain, meta):
            # mox: mail from a verified list is accepted without DMARC or junk checks.
            meta["mailing_list"] = True
            return Verdict(True, "list-allow", rs.list_allow_domain, mailbox=rs.mailbox)
    if dmarc_reject and not (rs is not None and rs.is_forward):
        log.info("dmarc policy rejects message", extra={"account": account, "rcpt": rcpt.text})
        code, enhanced, text = DMARC_REFUSAL
        refused = Verdict(False, "dmarc-policy", "", code=code, enhanced=enhanced, message=text)
        return _accept_reject(refused, rs)
    if ctx.localserve or acc_cfg is None or acc_cfg.junk_filter is None:
        if rs is None:
            return None
        return Verdict(True, "ruleset", "", mailbox=rs.mailbox, record=False)
    acc = ctx.store.account(account)
    verdict = await analyze.analyze(
        account=acc,
        config=acc_cfg,
        header=header,
        data=copy,
        meta=meta,
        rcpt=rcpt.text,
        tls=conn.tls,
        resolver=ctx.resolver,
        dnsbls=dnsbl_zones(ctx),
        forward=rs is not None and rs.is_forward,
    )
    if verdict.accept:
        if rs is not None:
            verdict = dataclasses.replace(verdict, mailbox=rs.mailbox)
        elif (
            acc_cfg.introbox
            and rcpt.mailbox.lower() == "inbox"
            and verdict.method not in ("msgfromfull", "msgtofull")
        ):
            # Reference §1.2 step 7: no reputation of the exact From address → Introbox.
            verdict = dataclasses.replace(verdict, mailbox=acc_cfg.introbox)
        await analyze.forget_reject(acc, acc_cfg.rejects_mailbox, header)
        log.info(
            "junk filter accepts",
            extra={"account": account, "rcpt": rcpt.text, "reason": verdict.reason},
        )
        delay = verdict.first_time and not acc_cfg.no_first_time_sender_delay
        delay = delay and verdict.reason not in NO_DELAY_REASONS and "forward" not in meta
        if not delay:
            verdict = dataclasses.replace(verdict, first_time=False)
        elif not any(v.first_time for v in earlier):
            # mox: a sender without reputation waits before delivery (keeps spammers busy).
            await asyncio.sleep(analyze.FIRST_TIME_SENDER_DELAY)
        return verdict
    accepted = _accept_reject(verdict, rs)
    if accepted.accept:
        log.info(
            "junk filter refusal accepted into ruleset mailbox",
            extra={"account": account, "rcpt": rcpt.text, "reason": verdict.reason},
        )
        return accepted
    uid = await analyze.keep_reject(acc, acc_cfg.rejects_mailbox, header, copy, meta)
    log.info(
        "junk filter refuses",
        extra={
            "account": account,
            "rcpt": rcpt.text,
            "reason": verdict.reason,
            "detail": verdict.detail,
            "rejects_uid": uid,
            "mailfrom": meta.get("mail_from", ""),
        },
    )
    return verdict


def _wants_failure_dsn(rcpt: Recipient) -> bool:
    return rcpt.notify is None or "FAILURE" in rcpt.notify  # RFC 3461 §4.1


async def conclude(
    ctx: ServerContext,
    txn: Transaction,
    refused: list[tuple[Recipient, Verdict]],
    delivered: int,
    original: bytes,
) -> None:
    """After all copies: refuse the transaction when nothing was delivered, else send a DSN
    for the refused recipients (mox's deliverErrors handling)."""
    if not refused:
        return
    if delivered == 0:
        first = refused[0][1]
        if all((v.code, v.enhanced) == (first.code, first.enhanced) for _, v in refused):
            raise SmtpReply(first.code, first.enhanced, first.message)
        if any(v.code >= 500 for _, v in refused):
            raise SmtpReply(554, "5.3.0", "multiple errors")
        raise SmtpReply(451, "4.3.0", "multiple errors")
    if txn.mail_from is None or ctx.queue is None or ctx.localserve:
        return  # RFC 5321 §4.5.5: never a DSN to the null reverse-path
    seen: set[str] = set()
    dsn_rcpts: list[DsnRecipient] = []
    for rcpt, v in refused:
        if rcpt.text.lower() in seen or not _wants_failure_dsn(rcpt):
            continue
        seen.add(rcpt.text.lower())
        dsn_rcpts.append(
            DsnRecipient(
                rcpt.text,
                "failed",
                v.enhanced,
                f"{v.code} {v.enhanced} {v.message}",
                orcpt=rcpt.orcpt,
            )
        )
    if not dsn_rcpts:
        return
    dsn = compose_dsn(
        reporting_mta=ctx.hostname,
        postmaster=f"postmaster@{ctx.hostname}",
        to=txn.mail_from_text,
        recipients=dsn_rcpts,
        original=original,
        ret="HDRS",  # as mox: the header of the refused message, never junk content
        envid=txn.envid,
        arrival=datetime.now(UTC),
    )
    ids = await ctx.queue.add(
        account="",
        mail_from="",  # RFC 3461 §6.2: a DSN has the null reverse-path
        recipients=[QueuedRecipient(txn.mail_from_text)],
        data=dsn,
    )
    log.info(
        "dsn queued for refused recipients",
        extra={"ids": ids, "to": txn.mail_from_text, "rcpts": [r.rcpt for r in dsn_rcpts]},
    )
