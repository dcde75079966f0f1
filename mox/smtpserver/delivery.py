"""After DATA: checks on the message, trace headers, and durable delivery into the accounts.

RFC 5321 §4.4 (Received, Return-Path), RFC 8601 (Authentication-Results, auth=pass for
submission), RFC 9228 (Delivered-To), RFC 5322 §3.6 (Message-ID and Date added when missing, as
RFC 6409 §8 allows a submission server to do).

Implementation notes:
- Headers added per recipient go in front of the message bytes; the message file is written once
  and never changed after (store contract).
- Every copy is durable (file and directory fsynced, row committed) before the 250 reply.
- On port 25 each copy gets the junk decision of `mox.junk.smtp` (the destination's rulesets,
  the DMARC policy per recipient, the junk filter); when only some copies are refused the others
  are delivered and the sender gets one DSN, as mox.
- Until the outgoing queue exists, a transaction that mixes known and unknown local recipients is
  refused as a whole after DATA (550 5.1.1): no silent loss, and no bounce we could not send.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import secrets
from email.parser import HeaderParser
from typing import Any

from mox import webhook
from mox.authres import submission as submission_results
from mox.junk import smtp as junk_smtp
from mox.junk.analyze import Verdict
from mox.queue.queue import QueuedRecipient
from mox.smtp.address import AddressError, parse_mailbox
from mox.smtp.codes import SmtpReply
from mox.smtpserver.mailauth import (
    Inbound,
    check_inbound,
    sign_submission,
    strip_claims,
    take_report,
)
from mox.smtpserver.pipeline import alias_accounts, sender_allowed, simulate
from mox.smtpserver.state import Conn, Recipient, ServerContext, Transaction

__all__ = ["deliver_message"]

log = logging.getLogger(__name__)

MAX_RECEIVED = 100  # mox: more Received headers than this is a loop (550 5.4.6)


def split_header(data: bytes) -> tuple[bytes, bytes]:
    """The header section (with its final CRLF) and the rest (blank line + body)."""
    if data.startswith(b"\r\n"):
        return b"", data
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data, b""
    return data[: end + 2], data[end + 2 :]


def parse_header(header: bytes) -> Any:
    return HeaderParser().parsestr(header.decode("utf-8", "replace"), headersonly=True)


def _with_for(rcpt: Recipient | None) -> str:
    return f"\r\n\tfor <{rcpt.text}>" if rcpt is not None else ""


def received(
    ctx: ServerContext, conn: Conn, txn: Transaction, ident: str, rcpt: Recipient | None
) -> bytes:
    # RFC 5321 §4.4 trace field; RFC 3848 §2 "with" types: ESMTP + S (TLS) + A (auth),
    # UTF8SMTP for SMTPUTF8 (RFC 6531 §3.7.3).
    with_ = "UTF8SMTP" if txn.smtputf8 else "ESMTP"
    if conn.tls:
        with_ += "S"
    if conn.account:
        with_ += "A"
    # For submission the client's address stays private, as mox.
    source = ctx.hostname if ctx.submission else f"{conn.ehlo or 'unknown'} ({conn.remote_ip})"
    tls = f"\r\n\t(using {conn.tls_version} with cipher {conn.tls_cipher})" if conn.tls else ""
    date = email.utils.formatdate(usegmt=True)
    return (
        f"Received: from {source} by {ctx.hostname} (mox) with {with_} id {ident}"
        f"{tls}{_with_for(rcpt)}; {date}\r\n"
    ).encode()


def _check_submission(ctx: ServerContext, conn: Conn, header: bytes) -> bytes:
    """Submission checks; returns header lines to add (Message-ID, Date)."""
    msg = parse_header(header)
    if ctx.pedantic and msg.get("Return-Path") is not None:
        raise SmtpReply(550, "5.6.0", "message must not have Return-Path header")  # as mox
    account = conn.account
    if account is None:
        raise SmtpReply(530, "5.7.0", "authentication required")
    if not ctx.localserve:
        froms = email.utils.getaddresses(msg.get_all("From", []))
        if not froms:
            raise SmtpReply(550, "5.6.0", "message needs a From header")  # RFC 5322 §3.6
        for _, addr_text in froms:
            try:
                addr = parse_mailbox(addr_text)
            except AddressError:
                raise SmtpReply(550, "5.6.0", "malformed From header") from None
            if not sender_allowed(ctx, account, addr):
                raise SmtpReply(550, "5.7.1", "from address must match authenticated user")
    extra = b""
    if msg.get("Message-Id") is None:
        extra += f"Message-Id: <{secrets.token_urlsafe(18)}@{ctx.hostname}>\r\n".encode()
    if msg.get("Date") is None:
        extra += f"Date: {email.utils.formatdate(localtime=True)}\r\n".encode()
    return extra


async def _store(
    ctx: ServerContext,
    account: str,
    mailbox: str,
    data: bytes,
    meta: dict[str, Any],
    flags: list[str] | None = None,
) -> int:
    # create: a missing mailbox is made in the delivery's own transaction, so the common case
    # costs no lookup here (bench/PROFILE.md).
    acc = ctx.store.account(account)
    msg = await acc.deliver(mailbox, data, flags=flags or [], meta=meta, create=True)
    return msg.uid


def requiretls_flag(txn: Transaction, header: bytes) -> bool | None:
    """REQUIRETLS from MAIL FROM (True), or "TLS-Required: No" (False, RFC 8689 §5), or None."""
    if txn.requiretls:
        return True
    msg = parse_header(header)
    if (msg.get("TLS-Required") or "").strip().lower() == "no":
        return False
    return None


async def deliver_message(
    ctx: ServerContext,
    conn: Conn,
    txn: Transaction,
    data: bytes,
    *,
    queue_ids: list[int] | None = None,
) -> str:
    """Deliver a received message to every recipient; returns the 250 reply line.

    `queue_ids`, when given, gets the queue ids of the recipients that went to the queue, in
    the order of `txn.recipients` (the web API reports them)."""
    header, rest = split_header(data)
    received_count = sum(1 for line in header.split(b"\r\n") if line[:9].lower() == b"received:")
    if received_count > MAX_RECEIVED:
        raise SmtpReply(550, "5.4.6", "too many Received headers, mail loop?")  # as mox
    if ctx.localserve:
        for rcpt in txn.recipients:
            if rcpt.localserve_code is not None:
                await simulate(rcpt.localserve_code, ctx)
    unknown = [r for r in txn.recipients if r.account is None and r.alias is None and not r.remote]
    if unknown:
        await asyncio.sleep(ctx.unknown_recipient_delay)  # as mox: slow down address probing
        log.info("unknown recipients", extra={"rcpts": [r.text for r in unknown]})
        raise SmtpReply(550, "5.1.1", "no such user")
    ident = secrets.token_urlsafe(12)
    prefix = b""
    inbound: Inbound | None = None
    if ctx.submission:
        extra = _check_submission(ctx, conn, header)
        # RFC 8601 §2.7.4: auth method result for the submission.
        prefix += submission_results(ctx.hostname, txn.mail_from_text)
        data = header + extra + rest if extra else data
        # RFC 6376 §5: sign with the From domain's selectors, as mox
        data = sign_submission(ctx, header + extra, data) + data
    else:
        header = strip_claims(ctx, header)  # RFC 8601 §5
        data = header + rest
        # The DMARC policy is applied per copy below: a destination's ruleset may exempt it.
        inbound = await check_inbound(ctx, conn, txn, header, data, dmarc_refuse=False)
        prefix += inbound.headers
    meta: dict[str, Any] = {
        "mail_from": txn.mail_from_text,
        "remote_ip": conn.remote_ip,
        "ehlo": conn.ehlo,
        "tls": conn.tls_version,
        "id": ident,
        "body": txn.body,
        "smtputf8": txn.smtputf8,
        "requiretls": txn.requiretls,
        "dsn": {"ret": txn.ret, "envid": txn.envid},
    }
    if conn.account:
        meta["authenticated"] = conn.account
    if inbound is not None:
        meta["auth"] = inbound.meta
    queued: list[Recipient] = []
    if ctx.submission and ctx.queue is not None:
        # FUTURERELEASE holds every recipient in the queue; otherwise only other domains go
        # there (local ones are delivered now).
        queued = [r for r in txn.recipients if r.remote or txn.hold_until is not None]
    if queued and ctx.queue is not None:
        ids = await ctx.queue.add(
            account=conn.account or "",
            mail_from=txn.mail_from_text,
            recipients=[QueuedRecipient(r.text, r.notify, r.orcpt) for r in queued],
            data=prefix + received(ctx, conn, txn, ident, None) + data,
            smtputf8=txn.smtputf8,
            requiretls=requiretls_flag(txn, header),
            dsn_ret=txn.ret,
            dsn_envid=txn.envid,
            hold_until=txn.hold_until,
        )
        if queue_ids is not None:
            queue_ids.extend(ids)
    queued_ids = {id(r) for r in queued}
    targets: list[tuple[Recipient, str, str]] = []
    for rcpt in txn.recipients:
        if id(rcpt) in queued_ids:
            continue
        if rcpt.alias is not None:
            targets += [(rcpt, acc, mb) for acc, mb in alias_accounts(ctx, txn, rcpt)]
        elif rcpt.account is not None:
            targets.append((rcpt, rcpt.account, rcpt.mailbox))
    dmarc = inbound.results.dmarc if inbound is not None else None
    dmarc_reject = dmarc is not None and dmarc.reject
    seen: set[tuple[str, str]] = set()
    verdicts: list[Verdict] = []  # mox.junk: per copy, rulesets, DMARC and the junk filter
    refused: list[tuple[Recipient, Verdict]] = []
    delivered = 0
    for rcpt, account, mailbox in targets:
        if (account, mailbox) in seen:
            continue  # one copy per account and mailbox
        seen.add((account, mailbox))
        lines = prefix
        if inbound is not None and rcpt.report is not None:
            lines = await take_report(ctx, rcpt, inbound, data) + lines
        if not ctx.submission:
            # RFC 5321 §4.4: the final delivery adds Return-Path; RFC 9228: Delivered-To.
            lines = (
                f"Return-Path: <{txn.mail_from_text}>\r\nDelivered-To: {rcpt.text}\r\n".encode()
                + lines
            )
        copy = lines + received(ctx, conn, txn, ident, rcpt) + data
        rmeta = {
            **meta,
            "rcpt_to": rcpt.text,
            "dsn": {**meta["dsn"], "notify": rcpt.notify, "orcpt": rcpt.orcpt},
        }
        # --- junk decision (mox.junk.smtp): port 25; rulesets, DMARC, junk filter ---
        verdict = await junk_smtp.decide(
            ctx, conn, txn, account, rcpt, header, copy, rmeta, verdicts, dmarc_reject=dmarc_reject
        )
        flags: list[str] = []
        if verdict is not None:
            verdicts.append(verdict)
            if not verdict.accept:
                refused.append((rcpt, verdict))
                continue  # junk is kept in the Rejects mailbox
            if verdict.record:
                copy = verdict.header() + copy
            if verdict.mailbox is not None and verdict.mailbox != mailbox:
                mailbox = verdict.mailbox
                if (account, mailbox) in seen:
                    continue  # one copy per account and mailbox
                seen.add((account, mailbox))
            if verdict.seen:
                flags.append("\\Seen")
        # --- end junk decision ---
        uid = await _store(ctx, account, mailbox, copy, rmeta, flags)
        delivered += 1
        webhook.incoming(ctx.store, account, mailbox, uid, copy, rmeta)  # when configured
        log.info(
            "delivered",
            extra={
                "id": ident,
                "account": account,
                "mailbox": mailbox,
                "uid": uid,
                "size": len(copy),
                "mailfrom": txn.mail_from_text,
                "rcpt": rcpt.text,
            },
        )
    # Nothing delivered: the refusal; some delivered: a DSN for the refused (as mox).
    await junk_smtp.conclude(ctx, txn, refused, delivered, header)
    if ctx.submission and conn.account and not ctx.localserve:
        await ctx.store.account(conn.account).record_outgoing([r.text for r in txn.recipients])
    return f"250 2.0.0 OK, id {ident}"
