"""Mail authentication in the SMTP server: the MAIL FROM domain check, the inbound verdict
(iprev, SPF, DKIM, ARC, then DMARC), report intake, and DKIM signing of submissions.

Implementation notes:
- The checks of a message run concurrently after DATA; their results become the
  Authentication-Results and Received-SPF header fields of every delivered copy and the `auth`
  entry of the message metadata. Only DMARC decides here: a fail under p=reject (or quarantine,
  as mox) is refused with 550 5.7.26; SPF fail alone is left to the junk filter (as mox's
  decision order, which weighs it with the sender's reputation).
- Incoming DMARC reports are parsed only when the message passed DMARC, TLS reports only with a
  DMARC or DKIM pass (as mox requires authentication of both), and stored for `mox dmarc reports`.
- An evaluation of a domain whose DMARC record asks for reports (rua) is kept for our outgoing
  aggregate reports, as mox.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from mox import arc as arc_mod
from mox import dmarc as dmarc_mod
from mox import dmarcrpt, iprev, spf, tlsrpt
from mox.authres import AuthResults, render, strip_ours
from mox.dkim import verify as dkim_verify
from mox.dkim.sign import sign as dkim_sign
from mox.dkim.sign import signers_for
from mox.dns.records import Mx, RecordError
from mox.dns.resolver import DnsError, NotFound, Resolver
from mox.smtp.codes import SmtpReply
from mox.smtpserver.state import Conn, Recipient, ServerContext, Transaction

__all__ = ["Inbound", "check_inbound", "check_sender_domain", "sign_submission", "take_report"]

log = logging.getLogger(__name__)


async def check_sender_domain(resolver: Resolver, domain: str) -> None:
    """The MAIL FROM domain must be able to receive replies: an MX, else an A or AAAA record
    (RFC 5321 §5.1 implicit MX). A null MX refuses mail (RFC 7505 §4.2); DNS trouble is 451."""
    try:
        answer = await resolver.query(domain, "MX")
    except NotFound:
        pass
    except DnsError as exc:
        log.info("sender domain lookup failed", extra={"domain": domain, "err": str(exc)})
        raise SmtpReply(451, "4.4.3", "temporary DNS error looking up sender domain") from None
    else:
        mxs = []
        for text in answer.records:
            try:
                mxs.append(Mx.parse(text))
            except RecordError:
                continue
        if len(mxs) == 1 and mxs[0].is_null:
            raise SmtpReply(550, "5.7.27", "sender domain does not accept mail (null MX)")
        if mxs:
            return
    for rtype in ("A", "AAAA"):
        try:
            await resolver.query(domain, rtype)
            return
        except NotFound:
            continue
        except DnsError:
            raise SmtpReply(451, "4.4.3", "temporary DNS error looking up sender domain") from None
    raise SmtpReply(550, "5.1.8", "sender domain has no MX or address records")  # RFC 3463


@dataclass
class Inbound:
    """The verdict for one incoming message."""

    results: AuthResults
    headers: bytes  # Authentication-Results and Received-SPF, to prepend to each copy
    meta: dict[str, Any] = field(default_factory=dict)


def _meta(r: AuthResults) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.iprev is not None:
        out["iprev"] = {"status": r.iprev.status, "host": r.iprev.host}
    if r.spf is not None:
        out["spf"] = {
            "status": r.spf.status,
            "domain": r.spf.domain,
            "identity": r.spf.identity,
            "authentic": r.spf.authentic,
        }
    out["dkim"] = [
        {"status": d.status, "domain": d.domain, "selector": d.selector, "authentic": d.authentic}
        for d in r.dkim
    ]
    if r.dmarc is not None:
        out["dmarc"] = {
            "status": r.dmarc.status,
            "from_domain": r.dmarc.from_domain,
            "policy": r.dmarc.policy,
            "reject": r.dmarc.reject,
            "overrides": list(r.dmarc.overrides),
        }
    if r.arc is not None:
        out["arc"] = {"status": r.arc.status, "instances": r.arc.instances}
    return out


def strip_claims(ctx: ServerContext, header: bytes) -> bytes:
    """Incoming header without Authentication-Results claiming to be ours (RFC 8601 §5)."""
    return strip_ours(header, ctx.hostname)


async def check_inbound(
    ctx: ServerContext,
    conn: Conn,
    txn: Transaction,
    header: bytes,
    data: bytes,
    *,
    dmarc_refuse: bool = True,
) -> Inbound:
    """Run every check on a message received on port 25; raises SmtpReply to refuse it.
    `dmarc_refuse=False`: the caller applies a DMARC reject policy (per recipient, mox.junk)."""
    resolver = ctx.resolver
    if resolver is None:
        empty = AuthResults()
        text = f"Authentication-Results: {ctx.hostname}; none (no DNS resolver)\r\n".encode()
        return Inbound(empty, text)
    iprev_r, spf_r, dkim_r, arc_r = await asyncio.gather(
        iprev.lookup(resolver, conn.remote_ip),
        spf.verify(resolver, conn.remote_ip, txn.mail_from_text, conn.ehlo),
        dkim_verify.verify(resolver, data),
        arc_mod.verify(resolver, data),
    )
    from_dom = dmarc_mod.from_domain(header)
    dmarc_r = await dmarc_mod.verify(resolver, from_dom, dkim_r, spf_r)
    results = AuthResults(iprev_r, spf_r, tuple(dkim_r), dmarc_r, arc_r)
    headers = render(ctx.hostname, results, comment=ctx.dns_comment)
    headers += spf_r.received_spf(ctx.hostname)
    inbound = Inbound(results, headers, _meta(results))
    if ctx.reports is not None and not ctx.localserve:
        await _store_evaluation(ctx, conn, txn, results)
    if dmarc_r.reject and dmarc_refuse:
        log.info(
            "dmarc policy rejects message",
            extra={"from": dmarc_r.from_domain, "policy": dmarc_r.policy, "ip": conn.remote_ip},
        )
        raise SmtpReply(550, "5.7.26", "DMARC policy rejects message")  # as mox, RFC 7372 §3.2
    if dmarc_r.status == "temperror" and dmarc_r.policy in ("reject", "quarantine"):
        raise SmtpReply(451, "4.7.0", "temporary DNS error during DMARC check, try again later")
    return inbound


async def _store_evaluation(
    ctx: ServerContext, conn: Conn, txn: Transaction, r: AuthResults
) -> None:
    m = r.dmarc
    if m is None or m.record is None or not m.record.rua or m.status not in ("pass", "fail"):
        return
    rec = m.record
    record = {
        "p": rec.policy,
        "sp": rec.subdomain_policy or "",
        "adkim": rec.adkim,
        "aspf": rec.aspf,
        "pct": rec.percentage,
        "ri": rec.report_interval,
        "rua": list(rec.rua),
    }
    spf_r = r.spf
    data = dmarcrpt.evaluation_data(
        policy_domain=m.policy_domain,
        from_domain=m.from_domain,
        record=record,
        source_ip=conn.remote_ip,
        disposition=m.policy if m.reject else "none",
        dkim_aligned=m.dkim_aligned,
        spf_aligned=m.spf_aligned,
        overrides=m.overrides,
        envelope_from=txn.mail_from.domain if txn.mail_from else "",
        dkim=[(d.domain, d.selector, d.status) for d in r.dkim if d.domain],
        spf=(spf_r.domain, "mfrom" if spf_r.identity == "mailfrom" else "helo", spf_r.status)
        if spf_r is not None
        else None,
    )
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    reports = ctx.reports
    if reports is not None:
        await asyncio.to_thread(reports.add_evaluation, m.policy_domain, now, data)


async def take_report(ctx: ServerContext, rcpt: Recipient, inbound: Inbound, data: bytes) -> bytes:
    """Parse and store a report sent to a report address; a header line when it failed."""
    reports = ctx.reports
    if rcpt.report is None or reports is None:
        return b""
    r = inbound.results
    received = datetime.datetime.now(datetime.UTC).isoformat()
    try:
        if rcpt.report == "dmarc":
            if r.dmarc is None or r.dmarc.status != "pass":
                raise dmarcrpt.ReportError("message did not pass DMARC")
            fb = dmarcrpt.parse_message(data)
            await asyncio.to_thread(
                reports.add_dmarc_report,
                received,
                fb.domain,
                fb.org_name,
                fb.report_id,
                fb.begin,
                fb.end,
                fb.to_dict(),
            )
            log.info("dmarc report stored", extra={"domain": fb.domain, "org": fb.org_name})
            return b""
        dkim_pass = any(d.status == "pass" for d in r.dkim)
        if not dkim_pass and (r.dmarc is None or r.dmarc.status != "pass"):
            raise tlsrpt.ReportError("message did not pass DKIM or DMARC")
        report = tlsrpt.parse_message(data)
        await asyncio.to_thread(
            reports.add_tlsrpt_report,
            received,
            ",".join(report.domains),
            report.organization_name,
            report.report_id,
            report.start,
            report.end,
            report.to_json(),
        )
        log.info("tls report stored", extra={"org": report.organization_name})
        return b""
    except (dmarcrpt.ReportError, tlsrpt.ReportError) as exc:
        name = "X-Mox-DMARCReport-Error" if rcpt.report == "dmarc" else "X-Mox-TLSReport-Error"
        log.info("report not stored", extra={"kind": rcpt.report, "err": str(exc)})
        text = str(exc).replace("\r", " ").replace("\n", " ")[:200]
        return f"{name}: {text}\r\n".encode()  # as mox


def sign_submission(ctx: ServerContext, header: bytes, data: bytes) -> bytes:
    """DKIM-Signature lines for a submitted message, by the From domain's selectors (as mox)."""
    domain = dmarc_mod.from_domain(header)
    if domain is None:
        return b""
    signers = signers_for(ctx.config, domain, ctx.dkim_keys)
    return dkim_sign(data, signers)
