"""Sender Policy Framework evaluation, RFC 7208 §4 and §5: `check_host()` over our `Resolver`.

`mox dnscheck` uses it to prove that the published SPF record passes for each of our IPs. It
follows the RFC's processing limits (10 DNS-querying terms, 2 void lookups, 10 MX targets; §4.6.4)
and macros (§7). The verdict for incoming mail belongs to the mail-authentication code; this is the
same algorithm without the Received-SPF header.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from mox.dns.records import RecordError, Spf, SpfDirective
from mox.dns.resolver import DnsError, NotFound, Resolver, ServFail, reverse_name

__all__ = ["SpfResult", "check_host"]

Result = Literal["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]

_QUALIFIER_RESULT: dict[str, Result] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_LOOKUPS = 10  # RFC 7208 §4.6.4
MAX_VOID = 2  # RFC 7208 §4.6.4
MAX_MX = 10  # RFC 7208 §4.6.4


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: Result
    reason: str
    record: str = ""  # the record of the evaluated domain


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass
class _State:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    sender: str
    helo: str
    lookups: int = 0
    void: int = 0
    depth: int = 0
    seen: list[str] = field(default_factory=list)

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError("more than 10 DNS-querying terms (RFC 7208 §4.6.4)")


def _expand(spec: str, domain: str, st: _State) -> str:
    """Macro expansion, RFC 7208 §7.1-§7.3 (no "exp" letters c, r, t)."""
    local, _, sender_domain = st.sender.rpartition("@")
    ip = st.ip
    # RFC 7208 §7.3: "i" is dotted nibbles for IPv6
    ip_text = str(ip) if ip.version == 4 else ".".join(ip.exploded.replace(":", ""))
    values = {
        "s": st.sender,
        "l": local or "postmaster",
        "o": sender_domain,
        "d": domain,
        "i": ip_text,
        "p": "unknown",  # RFC 7208 §7.3: "p" SHOULD NOT be used; "unknown" is allowed
        "v": "in-addr" if ip.version == 4 else "ip6",
        "h": st.helo,
    }
    out: list[str] = []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        nxt = spec[i + 1 : i + 2]
        if nxt == "%":
            out.append("%")
        elif nxt == "_":
            out.append(" ")
        elif nxt == "-":
            out.append("%20")
        elif nxt == "{":
            end = spec.find("}", i)
            m = re.fullmatch(r"([slodiphv])([0-9]*)(r?)([-.+,/_=]*)", spec[i + 2 : end], re.I)
            if end < 0 or m is None:
                raise _PermError(f"bad macro in {spec!r}")  # RFC 7208 §7.1
            letter, digits, reverse, delims = m.groups()
            parts = re.split("[" + re.escape(delims or ".") + "]", values[letter.lower()])
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise _PermError("macro keeps zero labels")  # RFC 7208 §7.1
                parts = parts[-int(digits) :]
            out.append(".".join(parts))
            i = end + 1
            continue
        else:
            raise _PermError(f"bad % in {spec!r}")  # RFC 7208 §7.1
        i += 2
    return "".join(out)


async def _addresses(resolver: Resolver, name: str, version: int, st: _State) -> list[str]:
    rtype = "A" if version == 4 else "AAAA"  # RFC 7208 §5.3: only the connection's family
    try:
        return list((await resolver.query(name, rtype)).records)
    except NotFound:
        st.void += 1
        if st.void > MAX_VOID:
            raise _PermError("more than 2 void lookups (RFC 7208 §4.6.4)") from None
        return []
    except DnsError as exc:
        raise _TempError(str(exc)) from None


def _in_network(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addr: str, bits: int) -> bool:
    try:
        net = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
    except ValueError:
        return False
    return ip.version == net.version and ip in net


async def _matches(resolver: Resolver, d: SpfDirective, domain: str, st: _State) -> bool:
    ip = st.ip
    cidr = (d.cidr4 if ip.version == 4 else d.cidr6) or (32 if ip.version == 4 else 128)
    target = _expand(d.value, domain, st) if d.value else domain
    if d.mechanism == "all":
        return True  # RFC 7208 §5.1
    if d.mechanism in ("ip4", "ip6"):  # RFC 7208 §5.6
        bits = (d.cidr4 if d.mechanism == "ip4" else d.cidr6) or (
            32 if d.mechanism == "ip4" else 128
        )
        return _in_network(ip, d.value or "", bits)
    st.count()
    if d.mechanism == "include":  # RFC 7208 §5.2
        sub = await _check(resolver, target, st)
        if sub.result == "pass":
            return True
        if sub.result == "temperror":
            raise _TempError(sub.reason)
        if sub.result in ("permerror", "none"):
            raise _PermError(f"include:{target}: {sub.result} ({sub.reason})")
        return False
    if d.mechanism == "a":  # RFC 7208 §5.3
        addrs = await _addresses(resolver, target, ip.version, st)
        return any(_in_network(ip, a, cidr) for a in addrs)
    if d.mechanism == "mx":  # RFC 7208 §5.4
        try:
            mx = [r.split()[-1] for r in (await resolver.query(target, "MX")).records]
        except NotFound:
            st.void += 1
            if st.void > MAX_VOID:
                raise _PermError("more than 2 void lookups (RFC 7208 §4.6.4)") from None
            return False
        except DnsError as exc:
            raise _TempError(str(exc)) from None
        if len(mx) > MAX_MX:
            raise _PermError("more than 10 MX targets (RFC 7208 §4.6.4)")
        for host in mx:
            if host == ".":
                continue
            for a in await _addresses(resolver, host, ip.version, st):
                if _in_network(ip, a, cidr):
                    return True
        return False
    if d.mechanism == "exists":  # RFC 7208 §5.7
        return bool(await _addresses(resolver, target, 4, st))
    # ptr, RFC 7208 §5.5 (discouraged): validated names that are target or below it
    try:
        names = (await resolver.query(reverse_name(str(ip)), "PTR")).records[:10]
    except DnsError:
        return False
    for name in names:
        name = name.rstrip(".").lower()
        if name == target or name.endswith("." + target):
            try:
                addrs = await _addresses(resolver, name, ip.version, st)
            except _PermError:
                return False
            if str(ip) in (str(ipaddress.ip_address(a)) for a in addrs):
                return True
    return False


async def _check(resolver: Resolver, domain: str, st: _State) -> SpfResult:
    domain = domain.rstrip(".").lower()
    if st.depth > 10 or domain in st.seen:
        raise _PermError(f"include/redirect loop at {domain}")
    try:
        answer = await resolver.query(domain, "TXT")
    except NotFound:
        return SpfResult("none", f"no SPF record at {domain}")  # RFC 7208 §4.3
    except (ServFail, DnsError) as exc:
        return SpfResult("temperror", str(exc))  # RFC 7208 §4.4
    records = [
        r for r in answer.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")
    ]
    if not records:
        return SpfResult("none", f"no SPF record at {domain}")  # RFC 7208 §4.5
    if len(records) > 1:
        return SpfResult("permerror", f"{len(records)} SPF records at {domain}", records[0])
    try:
        spf = Spf.parse(records[0])
    except RecordError as exc:
        return SpfResult("permerror", str(exc), records[0])  # RFC 7208 §4.6
    st.depth += 1
    st.seen.append(domain)
    try:
        for d in spf.directives:  # RFC 7208 §4.6.2: first match wins
            if await _matches(resolver, d, domain, st):
                result = _QUALIFIER_RESULT[d.qualifier]
                return SpfResult(result, f"matched {d.to_text()} at {domain}", records[0])
        if spf.redirect is not None:  # RFC 7208 §6.1
            st.count()
            target = _expand(spf.redirect, domain, st)
            sub = await _check(resolver, target, st)
            if sub.result == "none":
                return SpfResult("permerror", f"redirect to {target}: no SPF record", records[0])
            return SpfResult(sub.result, sub.reason, records[0])
        return SpfResult("neutral", f"no mechanism matched at {domain}", records[0])  # §4.7
    finally:
        st.seen.pop()
        st.depth -= 1


async def check_host(
    resolver: Resolver, ip: str, domain: str, sender: str = "", helo: str = ""
) -> SpfResult:
    """The SPF result for mail from `ip` with `domain` as the sender's domain (RFC 7208 §4)."""
    st = _State(ipaddress.ip_address(ip), sender or f"postmaster@{domain}", helo or domain)
    try:
        return await _check(resolver, domain, st)
    except _PermError as exc:
        return SpfResult("permerror", str(exc))
    except _TempError as exc:
        return SpfResult("temperror", str(exc))
