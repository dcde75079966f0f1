"""dnscheck sections for message authentication: SPF (evaluated for our IPs), DKIM (published key
equals our private key), DMARC and TLSRPT."""

from __future__ import annotations

from mox.dkim.keys import same_public_key
from mox.dns.check.context import Context
from mox.dns.check.model import Section
from mox.dns.records import DkimKey, Dmarc, RecordError, TlsRpt
from mox.dns.resolver import DnsError, NotFound
from mox.dns.spfeval import check_host

__all__ = ["check_dkim", "check_dmarc", "check_spf", "check_tlsrpt"]


async def check_spf(ctx: Context, name: str, owner: str) -> Section:
    """The SPF record at `name` (a mail domain, or the host) passes for every public IP."""
    sec = Section("SPF", name)
    fix = ctx.fix("SPF", owner, name)
    try:
        records = await ctx.txt(name, "v=spf1")
    except DnsError as exc:
        sec.error(f"TXT lookup failed: {exc.reason}")
        return sec
    if not records:
        sec.error(f"no SPF record at {name}", fix)
        return sec
    if len(records) > 1:
        sec.error(f"{len(records)} SPF records at {name}; there must be one (RFC 7208 §4.5)", fix)
        return sec
    if not ctx.facts.public_ips:
        sec.warn("no public IPs in the config (public_ips): cannot evaluate SPF for them")
        return sec
    for ip in ctx.facts.public_ips:
        # RFC 7208 §2.4: for a bounce, the HELO name is the checked domain.
        sender = f"postmaster@{name}"
        result = await check_host(ctx.resolver, ip, name, sender, ctx.facts.hostname)
        if result.result == "pass":
            sec.ok(f"SPF for {ip}: pass ({result.reason})")
        else:
            sec.error(
                f"SPF for {ip}: {result.result} ({result.reason}) with {records[0]!r}; "
                "mail we send would fail SPF",
                fix,
            )
    return sec


async def check_dkim(ctx: Context, domain: str) -> Section:
    """Every configured selector's published key is the public half of our private key."""
    sec = Section("DKIM", domain)
    dom = ctx.domain(domain)
    if not dom.dkim:
        sec.error(
            "no DKIM keys configured for the domain: outgoing mail is not signed; "
            "`mox quickstart` creates them"
        )
        return sec
    for selector, key in dom.dkim.items():
        name = f"{selector}._domainkey.{domain}"
        fix = ctx.fix("DKIM", domain, name)
        try:
            records = await ctx.txt(name, "")
        except DnsError as exc:
            sec.error(f"selector {selector}: lookup failed: {exc.reason}")
            continue
        candidates = [r for r in records if "p=" in r]
        if not candidates:
            sec.error(f"selector {selector}: no DKIM key record at {name}", fix)
            continue
        if len(candidates) > 1:
            sec.error(f"selector {selector}: {len(candidates)} records at {name}; publish one", fix)
            continue
        try:
            record = DkimKey.parse(candidates[0])
        except RecordError as exc:
            sec.error(f"selector {selector}: {exc}", fix)
            continue
        if not record.public_key:
            sec.error(f"selector {selector}: the published key is revoked (empty p=)", fix)
        elif not same_public_key(record, key):
            sec.error(
                f"selector {selector}: the published key is not the public key of our private "
                "key: signatures will not verify",
                fix,
            )
        else:
            sec.ok(f"selector {selector}: the published key matches our private key")
    return sec


async def check_dmarc(ctx: Context, domain: str) -> Section:
    sec = Section("DMARC", domain)
    fix = ctx.fix("DMARC", domain)
    dom = ctx.domain(domain)
    try:
        records = await ctx.txt(f"_dmarc.{domain}", "v=DMARC1")
    except DnsError as exc:
        sec.error(f"lookup failed: {exc.reason}")
        return sec
    if not records:
        sec.error(f"no DMARC record at _dmarc.{domain}", fix)
        return sec
    if len(records) > 1:
        sec.error(f"{len(records)} DMARC records; there must be one (RFC 7489 §6.6.3)", fix)
        return sec
    try:
        dmarc = Dmarc.parse(records[0])
    except RecordError as exc:
        sec.error(str(exc), fix)
        return sec
    good = True
    if dmarc.policy == "none":
        good = False
        sec.warn(
            "the policy is p=none: failing messages claiming to be from your domain are not "
            "rejected; use p=reject once your setup works",
            fix,
        )
    if dmarc.subdomain_policy == "none":
        good = False
        sec.warn("the subdomain policy is sp=none: subdomains can be spoofed", fix)
    if dom.config.dmarc is not None:
        address = f"{dom.config.dmarc.localpart}@{domain}".lower()
        if address not in dmarc.rua_addresses():
            good = False
            sec.error(f"our report address {address} is not in rua=", fix)
    elif not dmarc.rua:
        sec.warn("no rua= reporting address: you get no aggregate reports")
    if good:
        sec.ok(f"DMARC record with p={dmarc.policy}: {records[0]}")
    return sec


async def check_tlsrpt(ctx: Context, name: str, owner: str, address: str | None) -> Section:
    """The TLSRPT record at `_smtp._tls.<name>` lists our report address (RFC 8460 §3)."""
    sec = Section("TLSRPT", name)
    fix = ctx.fix("TLSRPT", owner, f"_smtp._tls.{name}")
    if address is None:
        sec.warn("no TLS reporting address configured (domains.*.tlsrpt): nothing to publish")
        return sec
    try:
        records = await ctx.txt(f"_smtp._tls.{name}", "v=TLSRPTv1")
    except NotFound:
        records = []
    except DnsError as exc:
        sec.error(f"lookup failed: {exc.reason}")
        return sec
    if not records:
        sec.error(f"no TLSRPT record at _smtp._tls.{name}", fix)
        return sec
    if len(records) > 1:
        sec.error(f"{len(records)} TLSRPT records; there must be one (RFC 8460 §3)", fix)
        return sec
    try:
        record = TlsRpt.parse(records[0])
    except RecordError as exc:
        sec.error(str(exc), fix)
        return sec
    if address.lower() not in record.rua_addresses():
        sec.error(f"our report address {address} is not in rua=", fix)
        return sec
    sec.ok(f"TLSRPT record sends reports to {address}")
    return sec
