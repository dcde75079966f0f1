"""DNS blocklists (RFC 5782), as mox's dnsbl package.

An IP is listed in a zone when an A record exists at its reversed address under the zone (RFC
5782 §2.1 for IPv4, §2.4 nibbles for IPv6); a TXT record there may say why (§2.1). A zone is only
used while it is healthy: 127.0.0.2 must be listed and 127.0.0.1 must not (§5), checked at most
once per `HEALTH_TTL` seconds.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Literal

from mox.dns.resolver import DnsError, NotFound, Resolver

__all__ = ["Listing", "check", "healthy", "lookup", "query_name"]

log = logging.getLogger(__name__)

HEALTH_TTL = 3600.0

Status = Literal["pass", "fail", "temperror"]


@dataclass(frozen=True, slots=True)
class Listing:
    status: Status  # "fail": listed (mox's naming), "pass": not listed
    explanation: str = ""


def query_name(ip: str, zone: str) -> str:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv4Address):
        labels = ".".join(reversed(str(addr).split(".")))  # RFC 5782 §2.1
    else:
        labels = ".".join(reversed(addr.exploded.replace(":", "")))  # RFC 5782 §2.4
    return f"{labels}.{zone.strip('.')}"


async def lookup(resolver: Resolver, zone: str, ip: str) -> Listing:
    name = query_name(ip, zone)
    try:
        await resolver.query(name, "A")
    except NotFound:
        return Listing("pass")
    except DnsError as exc:
        return Listing("temperror", str(exc))
    explanation = ""
    try:
        txt = await resolver.query(name, "TXT")  # RFC 5782 §2.1: optional reason
        explanation = " ".join(txt.records)[:200]
    except DnsError:
        pass
    return Listing("fail", explanation)


_health: dict[tuple[int, str], tuple[float, bool]] = {}


async def healthy(resolver: Resolver, zone: str) -> bool:
    """RFC 5782 §5: the zone lists 127.0.0.2 and not 127.0.0.1."""
    key = (id(resolver), zone)
    now = time.monotonic()
    cached = _health.get(key)
    if cached is not None and now - cached[0] < HEALTH_TTL:
        return cached[1]
    ok = (await lookup(resolver, zone, "127.0.0.2")).status == "fail" and (
        await lookup(resolver, zone, "127.0.0.1")
    ).status == "pass"
    if not ok:
        log.warning("dnsbl unhealthy, not used", extra={"zone": zone})
    _health[key] = (now, ok)
    return ok


async def check(resolver: Resolver, zones: list[str], ip: str) -> tuple[str, Listing] | None:
    """The first healthy zone (in order, as mox) that lists the IP, with the listing."""
    for zone in zones:
        if not await healthy(resolver, zone):
            continue
        listing = await lookup(resolver, zone, ip)
        if listing.status == "fail":
            return zone, listing
        if listing.status == "temperror":
            log.info("dnsbl lookup failed", extra={"zone": zone, "ip": ip})
    return None
