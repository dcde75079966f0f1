"""Daily outgoing TLS reports (RFC 8460), as mox's tlsrptsend.

The queue records the result of every outgoing TLS session per policy domain and day
(`tls_results`). After each UTC day, for each policy domain with results:
- skip our own domains and host name (never a report from us to ourselves);
- skip days without failures unless `tls_reports_for_all_success` (as mox);
- look up `_smtp._tls.<domain>` (RFC 8460 §3); only `mailto:` destinations are used;
- compose the JSON report (§4), gzip it as `application/tlsrpt+gzip` in a multipart/report
  message with report-type=tlsrpt (§5.3), DKIM-sign it for the host name, and queue it from
  postmaster@<host> with `TLS-Required: No` (RFC 8689 §5: a report must get through even when
  the recipient's TLS is broken; that is what it reports).
Sessions that deliver TLS reports are not recorded, so reports never report on reports (§3).
A (day, domain) pair is sent at most once, remembered in `tlsrpt_sent`.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import gzip
import json
import logging
import random
import secrets
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from mox.dkim.sign import KeyCache, signers_for
from mox.dkim.sign import sign as dkim_sign
from mox.dns.records import RecordError, TlsRpt
from mox.dns.resolver import DnsError, NotFound
from mox.tlsrpt import FailureDetails, PolicyResult, Report

if TYPE_CHECKING:
    from mox.queue.queue import Queue

__all__ = ["compose_message", "is_tls_report", "send_daily_reports", "worker"]

log = logging.getLogger(__name__)

MAX_DOMAINS_PER_RUN = 1000  # bounded work per run; the rest waits for the next one
KEEP_DAYS = 14  # tls_results older than this are removed


def is_tls_report(data: bytes) -> bool:
    """Whether a queued message is a TLS report (RFC 8460 §5.3 report-type=tlsrpt)."""
    end = data.find(b"\r\n\r\n")
    head = (data if end < 0 else data[:end]).lower()
    return b"report-type=tlsrpt" in head or b'report-type="tlsrpt"' in head


def build_report(
    hostname: str, policy_domain: str, day: date, rows: list[tuple[str, str, int]]
) -> Report:
    """The RFC 8460 §4.4 report for one policy domain and day from (type, result, count)."""
    by_type: dict[str, dict[str, int]] = {}
    for ptype, result, count in rows:
        by_type.setdefault(ptype, {})[result] = by_type.setdefault(ptype, {}).get(result, 0) + count
    policies = []
    for ptype, results in sorted(by_type.items()):
        ok = results.get("success", 0)
        failures = {r: n for r, n in results.items() if r != "success"}
        policies.append(
            PolicyResult(
                policy_type=ptype,
                policy_domain=policy_domain,
                successful=ok,
                failed=sum(failures.values()),
                failure_details=tuple(
                    FailureDetails(result_type=r, failed_session_count=n)
                    for r, n in sorted(failures.items())
                ),
            )
        )
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    return Report(
        organization_name=hostname,
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        contact_info=f"postmaster@{hostname}",
        report_id=f"{day.isoformat()}.{policy_domain}.{secrets.token_hex(6)}@{hostname}",
        policies=tuple(policies),
    )


def compose_message(hostname: str, policy_domain: str, to: list[str], report: Report) -> bytes:
    """RFC 8460 §5.3: multipart/report; report-type=tlsrpt, with the gzipped JSON."""
    start = int(
        datetime.strptime(report.start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    )
    end = int(datetime.strptime(report.end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    # RFC 8460 §5.1: sender!policy-domain!begin-timestamp!end-timestamp[!unique-id].json.gz
    filename = f"{hostname}!{policy_domain}!{start}!{end}.json.gz"
    payload = gzip.compress(json.dumps(report.to_json(), indent=1).encode(), mtime=0)
    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    boundary = "mox-tlsrpt-" + secrets.token_hex(10)
    lines = [
        f"From: <postmaster@{hostname}>",
        "To: " + ", ".join(f"<{a}>" for a in to),
        # RFC 8460 §5.3: the suggested subject.
        f"Subject: Report Domain: {policy_domain} Submitter: {hostname} "
        f"Report-ID: <{report.report_id}>",
        f"Date: {email.utils.format_datetime(datetime.now(UTC))}",
        f"Message-Id: <{secrets.token_hex(16)}@{hostname}>",
        f"TLS-Report-Domain: {policy_domain}",  # RFC 8460 §5.3
        f"TLS-Report-Submitter: {hostname}",
        "TLS-Required: No",  # RFC 8689 §5
        "Auto-Submitted: auto-generated",  # RFC 3834 §5
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type="tlsrpt"; boundary="{boundary}"',
        "",
        "This is a TLS report (RFC 8460) in MIME format.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"TLS report for {policy_domain}, {report.start} to {report.end}, from {hostname}.",
        "",
        f"--{boundary}",
        f'Content-Type: application/tlsrpt+gzip; name="{filename}"',
        f'Content-Disposition: attachment; filename="{filename}"',
        "Content-Transfer-Encoding: base64",
        "",
    ]
    return ("\r\n".join(lines) + "\r\n" + encoded + f"\r\n--{boundary}--\r\n").encode()


async def _destinations(queue: Queue, policy_domain: str) -> list[str]:
    if queue.resolver is None:
        return []
    try:
        answer = await queue.resolver.query(f"_smtp._tls.{policy_domain}", "TXT")
    except NotFound:
        return []
    except DnsError as e:
        log.info("tlsrpt lookup failed", extra={"domain": policy_domain, "err": str(e)})
        return []
    records = [r for r in answer.records if r.startswith("v=TLSRPTv1")]
    if len(records) != 1:
        return []  # RFC 8460 §3: none or several records: no reporting
    try:
        record = TlsRpt.parse(records[0])
    except RecordError:
        return []
    return record.rua_addresses()  # https: destinations are not supported (as mox)


async def send_daily_reports(queue: Queue, day: date, *, keys: KeyCache | None = None) -> int:
    """Queue the TLS reports for `day`; how many were queued."""
    cfg = queue.config.config
    hostname = cfg.hostname.lower()
    ours = {d.lower() for d in cfg.domains} | {hostname}
    dayiso = day.isoformat()

    def pending(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, int]]]:
        rows = conn.execute(
            "SELECT policy_domain, policy_type, result, count FROM tls_results WHERE day = ? "
            "AND policy_domain NOT IN (SELECT policy_domain FROM tlsrpt_sent WHERE day = ?) "
            "ORDER BY policy_domain",
            (dayiso, dayiso),
        ).fetchall()
        out: dict[str, list[tuple[str, str, int]]] = {}
        for domain, ptype, result, count in rows:
            if domain not in out and len(out) >= MAX_DOMAINS_PER_RUN:
                break
            out.setdefault(domain, []).append((ptype, result, int(count)))
        return out

    def mark(conn: sqlite3.Connection, domain: str) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO tlsrpt_sent(day, policy_domain, sent) VALUES (?,?,?)",
            (dayiso, domain, queue.clock().isoformat(timespec="seconds")),
        )

    from mox.queue.queue import QueuedRecipient

    found = await queue.db_call(pending)
    sent = 0
    for domain, rows in found.items():
        skip = (
            domain in ours
            or any(domain.endswith("." + d) for d in ours)
            or (
                not cfg.queue.tls_reports_for_all_success
                and all(result == "success" for _, result, _ in rows)
            )
        )
        to = [] if skip else await _destinations(queue, domain)
        if to:
            report = build_report(hostname, domain, day, rows)
            message = compose_message(hostname, domain, to, report)
            signers = signers_for(queue.config, hostname, keys)
            message = await asyncio.to_thread(dkim_sign, message, signers) + message
            await queue.add(
                account="",  # DSNs about reports go to the postmaster account
                mail_from=f"postmaster@{hostname}",
                recipients=[QueuedRecipient(a) for a in to],
                data=message,
                requiretls=False,
            )
            sent += 1
            log.info("tls report queued", extra={"domain": domain, "day": dayiso, "to": to})
        await queue.db_call(functools.partial(mark, domain=domain))

    cutoff = (day - timedelta(days=KEEP_DAYS)).isoformat()
    await queue.db_call(lambda c: c.execute("DELETE FROM tls_results WHERE day < ?", (cutoff,)))
    await queue.db_call(lambda c: c.execute("DELETE FROM tlsrpt_sent WHERE day < ?", (cutoff,)))
    return sent


async def worker(queue: Queue) -> None:
    """Yesterday's reports at start, then each day shortly after 00:00 UTC, spread over up to
    4 hours (as mox) so receivers are not flooded at midnight."""
    keys = KeyCache()
    while True:
        now = queue.clock()
        try:
            if queue.config.config.queue.outgoing_tls_reports:
                n = await send_daily_reports(queue, now.date() - timedelta(days=1), keys=keys)
                if n:
                    log.info("tls reports queued", extra={"n": n})
        except Exception:
            log.exception("sending tls reports failed")
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
        wait = (midnight - now).total_seconds() + random.uniform(60, 4 * 3600)
        await asyncio.sleep(wait)
