"""iprev: forward-confirmed reverse DNS of the connecting IP, RFC 8601 §3.

The PTR names of the address are looked up (at most 10), and the address must be among the A or
AAAA records of one of them. Results as RFC 8601 §2.7.3: pass; fail when the names do not point
back (or there are none to check); permerror when no PTR records are published; temperror when
DNS failed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from mox.dns.resolver import DnsError, NotFound, Resolver, reverse_name

__all__ = ["IprevResult", "IprevStatus", "lookup"]

IprevStatus = Literal["pass", "fail", "temperror", "permerror"]
MAX_NAMES = 10  # as RFC 7208 §4.6.4 limits PTR names; RFC 8601 leaves the number open


@dataclass(frozen=True, slots=True)
class IprevResult:
    status: IprevStatus
    ip: str
    host: str = ""  # the confirmed name (pass)
    names: tuple[str, ...] = ()  # the PTR names found
    authentic: bool = False
    reason: str = ""


async def lookup(resolver: Resolver, ip: str) -> IprevResult:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    text = str(addr)
    try:
        answer = await resolver.query(reverse_name(text), "PTR")
    except NotFound as exc:
        # RFC 8601 §2.7.3: no PTR data published for the address
        return IprevResult("permerror", text, authentic=exc.authentic, reason="no PTR records")
    except DnsError as exc:
        return IprevResult("temperror", text, reason=str(exc))
    names = tuple(n.rstrip(".").lower() for n in answer.records[:MAX_NAMES])
    authentic = answer.authentic
    temp = ""
    rtype = "A" if addr.version == 4 else "AAAA"
    for name in names:
        try:
            forward = await resolver.query(name, rtype)
        except NotFound as exc:
            authentic = authentic and exc.authentic
            continue
        except DnsError as exc:
            temp = str(exc)
            continue
        ips = {str(ipaddress.ip_address(r)) for r in forward.records}
        if text in ips:
            return IprevResult("pass", text, name, names, authentic=authentic and forward.authentic)
        authentic = authentic and forward.authentic
    if temp:
        return IprevResult("temperror", text, names=names, reason=temp)
    # RFC 8601 §2.7.3 fail: the forward lookups did not lead back to the address
    return IprevResult(
        "fail", text, names=names, authentic=authentic, reason="names do not resolve to the IP"
    )
