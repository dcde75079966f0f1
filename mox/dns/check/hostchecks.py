"""dnscheck sections about the zone and the host: DNSSEC, iprev (PTR), MX and DANE."""

from __future__ import annotations

import ipaddress

from mox.dns.check.context import Context
from mox.dns.check.model import Section
from mox.dns.expected import expected_tlsa
from mox.dns.records import Mx, RecordError, Tlsa
from mox.dns.resolver import DnsError, NotFound, lookup_ips, reverse_name

__all__ = ["check_dane", "check_dnssec", "check_iprev", "check_mx"]


async def check_dnssec(ctx: Context, zone: str) -> Section:
    """The zone's answers are DNSSEC-authentic through a trusted validating resolver."""
    sec = Section("DNSSEC", zone)
    try:
        soa = await ctx.resolver.query(zone, "SOA")
        authentic = soa.authentic
    except NotFound as exc:
        authentic = exc.authentic  # RFC 4035 §3.2.3: AD on authenticated denial as well
    except DnsError as exc:
        sec.error(
            f"the resolver could not look up {zone}: {exc.reason} (a broken DNSSEC signature "
            "or trust chain gives SERVFAIL)"
        )
        return sec
    if authentic:
        sec.ok(f"{zone} is DNSSEC-signed and the resolver validated its answers")
        return sec
    if not ctx.resolver.trusted:
        sec.warn(
            "the resolver is not trusted to validate DNSSEC (it is not on loopback); run a "
            "validating resolver such as unbound on this machine and use --resolver 127.0.0.1"
        )
    try:
        dnskey = await ctx.resolver.query(zone, "DNSKEY")
    except NotFound:
        sec.warn(
            f"{zone} is not DNSSEC-signed: enable DNSSEC at your DNS operator and publish the DS "
            "record at the registrar; DANE needs it (RFC 7672 §2.2)"
        )
        return sec
    except DnsError as exc:
        sec.error(f"DNSKEY lookup for {zone} failed: {exc.reason}")
        return sec
    sec.warn(
        f"{zone} has {len(dnskey.records)} DNSKEY records but the answers are not validated: "
        "publish the DS record at the parent (registrar), or make the resolver validate"
    )
    return sec


async def check_iprev(ctx: Context) -> Section:
    """Every public IP has one PTR, our host name, which resolves back to it (forward-confirmed)."""
    host = ctx.facts.hostname
    sec = Section("IPRev", host)
    if not ctx.facts.public_ips:
        sec.warn("no public IPs in the config (public_ips): nothing to check")
        return sec
    for ip in ctx.facts.public_ips:
        ptr = reverse_name(ip)
        fix = [f"{ptr + '.':<31} PTR {host}."]
        try:
            names = [n.rstrip(".").lower() for n in (await ctx.resolver.query(ptr, "PTR")).records]
        except NotFound:
            sec.error(
                f"{ip} has no reverse DNS (PTR); ask the owner of the IP (your hosting provider) "
                f"to set it to {host}",
                fix,
            )
            continue
        except DnsError as exc:
            sec.error(f"PTR lookup for {ip} failed: {exc.reason}")
            continue
        if names != [host]:
            sec.error(
                f"{ip} has reverse DNS {', '.join(names)}, expected exactly {host}: receivers "
                "check that the name matches (iprev, RFC 8601 §3)",
                fix,
            )
            continue
        try:
            forward, _ = await lookup_ips(ctx.resolver, host)
        except DnsError as exc:
            sec.error(f"address lookup of {host} failed: {exc.reason}")
            continue
        loopback = [f for f in forward if not ctx.our_ip(f) and ipaddress.ip_address(f).is_loopback]
        if loopback:
            sec.error(f"{host} resolves to loopback address {', '.join(loopback)}")
        if ip not in forward:
            sec.error(
                f"{ip} has reverse name {host}, but {host} does not resolve to {ip}",
                ctx.fix("MX", "", host),
            )
            continue
        sec.ok(f"{ip} reverse resolves to {host}, which resolves back to {ip}")
    return sec


async def check_mx(ctx: Context, domain: str) -> Section:
    """MX records exist, are not a null MX, and point only to hosts with our IPs."""
    sec = Section("MX", domain)
    fix = ctx.fix("MX", domain)
    try:
        answer = await ctx.resolver.query(domain, "MX")
    except NotFound:
        sec.error(f"no MX records for {domain}: other servers cannot deliver to us", fix)
        return sec
    except DnsError as exc:
        sec.error(f"MX lookup failed: {exc.reason}")
        return sec
    try:
        mxs = sorted((Mx.parse(r) for r in answer.records), key=lambda m: m.preference)
    except RecordError as exc:
        sec.error(str(exc), fix)
        return sec
    if any(m.is_null for m in mxs):
        sec.error(f"{domain} has a null MX (RFC 7505): it says the domain accepts no mail", fix)
        return sec
    host = ctx.facts.hostname + "."
    if host not in [m.host for m in mxs]:
        sec.error(f"the MX records point to {', '.join(m.host for m in mxs)}, not to {host}", fix)
    for mx in mxs:
        ips = await ctx.ips(mx.host)
        if not ips:
            sec.error(f"MX host {mx.host} has no addresses")
            continue
        foreign = [ip for ip in ips if not ctx.our_ip(ip)]
        if len(foreign) == len(ips):
            sec.error(
                f"none of the IPs of MX host {mx.host} ({', '.join(ips)}) are ours "
                f"({', '.join(ctx.facts.public_ips)})",
                fix,
            )
        elif foreign:
            sec.error(f"some of the IPs of MX host {mx.host} are not ours: {', '.join(foreign)}")
        else:
            sec.ok(f"MX {mx.preference} {mx.host} resolves to our IPs {', '.join(ips)}")
    return sec


async def check_dane(ctx: Context) -> Section:
    """TLSA at `_25._tcp.<host>`: present, DNSSEC-signed, equal to the records for our keys."""
    host = ctx.facts.hostname
    sec = Section("DANE", host)
    name = f"_25._tcp.{host}"
    fix = ctx.fix("DANE", "")
    expected = expected_tlsa(ctx.facts)
    if not expected:
        sec.warn(
            "no host keys configured (listeners.*.tls.host_private_key_files), so no TLSA "
            "records can be published; `mox quickstart` creates them"
        )
        return sec
    try:
        answer = await ctx.resolver.query(name, "TLSA")
    except NotFound as exc:
        if exc.authentic:
            sec.error(f"no TLSA records at {name}; the zone is signed, so publish them", fix)
        else:
            sec.warn(
                f"no TLSA records at {name}, and the zone is not DNSSEC-signed (or not "
                "validated): DANE needs DNSSEC; sign the zone, then publish",
                fix,
            )
        return sec
    except DnsError as exc:
        sec.error(f"TLSA lookup failed: {exc.reason}")
        return sec
    try:
        published = {Tlsa.parse(r) for r in answer.records}
    except RecordError as exc:
        sec.error(str(exc), fix)
        return sec
    if not answer.authentic:
        sec.warn(
            f"the TLSA records at {name} are not DNSSEC-validated, so senders ignore them "
            "(RFC 7672 §2.2): sign the zone",
            fix,
        )
    matching = published & expected
    if not matching:
        sec.error(
            f"none of the TLSA records at {name} match our host keys: DANE-verifying senders "
            "cannot deliver; publish",
            fix,
        )
        return sec
    missing = expected - published
    extra = published - expected
    if missing:
        sec.warn(f"{len(missing)} of our host keys have no TLSA record at {name}", fix)
    if extra:
        sec.warn(
            f"{len(extra)} TLSA records at {name} are not for our keys: "
            + ", ".join(t.to_text()[:20] + "..." for t in sorted(extra, key=Tlsa.to_text))
        )
    if answer.authentic and not missing:
        sec.ok(f"{len(matching)} DNSSEC-signed TLSA records at {name} match our host keys")
    return sec
