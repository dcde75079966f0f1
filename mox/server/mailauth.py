"""The resolver and report machinery the servers use for mail authentication.

- `mox serve`: the resolver of the config's `dns` section (nameservers, else /etc/resolv.conf;
  the DNSSEC AD bit trusted as configured, by default only from loopback resolvers), reports in
  `reports.db`, and an hourly task that builds due outgoing DMARC aggregate reports.
- `mox localserve` makes no DNS query at all: as mox's localserve, the records of the hosted
  domains are answered from the config (SPF `v=spf1 ip4:127.0.0.1/8 ip6:::1 ~all`, DKIM keys of
  the configured selectors, loopback addresses) and every other name does not exist.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass

import dns.resolver

from mox.config.load import LoadedConfig
from mox.dkim.keys import load_private_key, public_record
from mox.dkim.sign import KeyCache, signers_for
from mox.dkim.sign import sign as dkim_sign
from mox.dmarcrpt import PENDING, build_due
from mox.dns.resolver import DnsPythonResolver, MockResolver, Resolver, parse_nameserver
from mox.queue.queue import Queue, QueuedRecipient
from mox.reportdb import ReportDB

__all__ = ["MailAuth", "dmarc_report_worker", "localserve_resolver", "setup"]

log = logging.getLogger(__name__)

LOCALSERVE_SPF = "v=spf1 ip4:127.0.0.1/8 ip6:::1 ~all"  # as mox's localserve
LOCALSERVE_COMMENT = "localserve: DNS answers come from the config, no queries are made"
REPORT_INTERVAL = 3600.0  # as mox: the report builder looks every hour


def resolver_from_config(loaded: LoadedConfig) -> DnsPythonResolver:
    settings = loaded.config.dns
    if settings.nameservers:
        servers = [parse_nameserver(text) for text in settings.nameservers]
    else:
        conf = dns.resolver.Resolver(filename="/etc/resolv.conf")
        servers = [(str(ns), 53) for ns in conf.nameservers]
    # bench/PROFILE.md: uncached DNS was 15% of SMTP time; answers are kept for their TTL.
    return DnsPythonResolver(
        servers, trusted=settings.trust_ad, timeout=settings.timeout, cache=True
    )


def localserve_resolver(loaded: LoadedConfig) -> MockResolver:
    """Answers for the hosted domains only, made from the config (no DNS is ever asked)."""
    records: dict[tuple[str, str], list[str]] = {}
    hosts = {loaded.config.hostname, *loaded.config.domains}
    for name in hosts:
        records[(name, "A")] = ["127.0.0.1"]
        records[(name, "AAAA")] = ["::1"]
    for name in loaded.config.domains:
        records[(name, "TXT")] = [LOCALSERVE_SPF]
    for domain, dom in loaded.config.domains.items():
        for selector, sel in dom.dkim.selectors.items():
            key = load_private_key(loaded.resolve(sel.private_key_file))
            records[(f"{selector}._domainkey.{domain}", "TXT")] = [public_record(key).to_text()]
    records[("1.0.0.127.in-addr.arpa", "PTR")] = [f"{loaded.config.hostname}."]
    records[("1." + "0." * 31 + "ip6.arpa", "PTR")] = [f"{loaded.config.hostname}."]
    return MockResolver(records)


@dataclass
class MailAuth:
    resolver: Resolver
    reports: ReportDB | None
    comment: str = ""


def setup(loaded: LoadedConfig, *, localserve: bool, resolver: Resolver | None) -> MailAuth:
    """The resolver (the given one, else from the config) and report store for the servers."""
    if localserve:
        return MailAuth(resolver or localserve_resolver(loaded), None, LOCALSERVE_COMMENT)
    return MailAuth(resolver or resolver_from_config(loaded), ReportDB.in_data_dir(loaded.data_dir))


async def send_pending_reports(db: ReportDB, queue: Queue, hostname: str) -> int:
    """Hand built DMARC aggregate reports to the outgoing queue (RFC 7489 §7.2); how many."""
    sent = 0
    for report in db.outgoing():
        if report["status"] != PENDING or not report["recipients"]:
            continue
        await queue.add(
            account="",  # DSNs about reports go to the postmaster account
            mail_from=f"postmaster@{hostname}",
            recipients=[QueuedRecipient(r) for r in report["recipients"]],
            data=report["message"],
        )
        db.set_outgoing_status(report["id"], "queued")
        sent += 1
    return sent


async def dmarc_report_worker(
    loaded: LoadedConfig,
    auth: MailAuth,
    *,
    interval: float = REPORT_INTERVAL,
    queue: Queue | None = None,
) -> None:
    """Build outgoing DMARC aggregate reports for finished intervals, every `interval` seconds,
    and hand them to the outgoing queue."""
    db = auth.reports
    if db is None:
        return
    hostname = loaded.config.hostname
    keys = KeyCache()

    def sign(message: bytes) -> bytes:
        return dkim_sign(message, signers_for(loaded, hostname, keys))

    while True:
        try:
            made = await build_due(
                db,
                auth.resolver,
                hostname=hostname,
                now=datetime.datetime.now(datetime.UTC),
                sign=sign,
            )
            if made:
                log.info("dmarc reports built", extra={"n": made})
            if queue is not None:
                sent = await send_pending_reports(db, queue, hostname)
                if sent:
                    log.info("dmarc reports queued", extra={"n": sent})
        except Exception:
            log.exception("building dmarc reports failed")
        await asyncio.sleep(interval)
