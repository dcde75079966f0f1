"""The junk filter's hook in SMTP delivery (port 25 only; submission and localserve never).

`decide` gives the verdict for one copy (None when the account has no `junk_filter`) and keeps
a refused copy in the account's Rejects mailbox; `conclude` refuses the transaction with 451 when
every copy was refused (temporary, as mox: a legitimate sender gets a DSN, junk is never
accepted and hidden). A transaction whose copies were partly refused is accepted for the others;
the refused copies are in the Rejects mailboxes and the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mox.junk import analyze
from mox.junk.analyze import Verdict
from mox.smtp.codes import SmtpReply
from mox.smtpserver.state import Conn, ServerContext

__all__ = ["conclude", "decide"]

log = logging.getLogger(__name__)


def dnsbl_zones(ctx: ServerContext) -> list[str]:
    """The DNSBL zones of the config's SMTP listeners, in order, without repeats."""
    zones: list[str] = []
    for listener in ctx.config.config.listeners.values():
        if listener.smtp.enabled:
            zones += [z for z in listener.smtp.dnsbls if z not in zones]
    return zones


async def decide(
    ctx: ServerContext,
    conn: Conn,
    account: str,
    rcpt: str,
    header: bytes,
    copy: bytes,
    meta: dict[str, Any],
    earlier: list[Verdict],
) -> Verdict | None:
    """The verdict for one copy; `earlier` are the verdicts of this transaction's copies so far
    (the first-time-sender delay is applied once, before the first accepted copy is stored)."""
    if ctx.submission or ctx.localserve:
        return None
    acc_cfg = ctx.config.config.accounts.get(account)
    if acc_cfg is None or acc_cfg.junk_filter is None:
        return None
    acc = ctx.store.account(account)
    verdict = await analyze.analyze(
        account=acc,
        config=acc_cfg,
        header=header,
        data=copy,
        meta=meta,
        rcpt=rcpt,
        tls=conn.tls,
        resolver=ctx.resolver,
        dnsbls=dnsbl_zones(ctx),
    )
    if verdict.accept:
        await analyze.forget_reject(acc, acc_cfg.rejects_mailbox, header)
        log.info(
            "junk filter accepts",
            extra={"account": account, "rcpt": rcpt, "reason": verdict.reason},
        )
        if verdict.first_time and acc_cfg.no_first_time_sender_delay:
            verdict = Verdict(True, verdict.reason, verdict.detail, first_time=False)
        if verdict.first_time and not any(v.first_time for v in earlier):
            # mox: a sender without reputation waits before delivery (keeps spammers busy).
            await asyncio.sleep(analyze.FIRST_TIME_SENDER_DELAY)
        return verdict
    uid = await analyze.keep_reject(acc, acc_cfg.rejects_mailbox, header, copy, meta)
    log.info(
        "junk filter refuses",
        extra={
            "account": account,
            "rcpt": rcpt,
            "reason": verdict.reason,
            "detail": verdict.detail,
            "rejects_uid": uid,
            "mailfrom": meta.get("mail_from", ""),
        },
    )
    return verdict


async def conclude(verdicts: list[Verdict], delivered: int) -> None:
    """After all copies: 451 when nothing was delivered because every copy was junk."""
    if verdicts and delivered == 0 and not any(v.accept for v in verdicts):
        # As mox: temporary, so a legitimate sender gets a DSN; the copy is in Rejects.
        raise SmtpReply(451, "4.7.1", "message looks like junk, try again later")
