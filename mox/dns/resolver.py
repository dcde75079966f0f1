"""DNS lookups behind a small protocol, so tests and checks choose the resolver.

`Resolver.query(name, rtype)` returns an `Answer` with the RDATA in presentation format (TXT: the
strings joined, RFC 7208 §3.3) and `authentic`: whether the answer was DNSSEC-validated. A stub
resolver cannot validate itself; it trusts the AD bit of a validating recursive resolver only when
that resolver is trusted, which by default means it is on loopback (RFC 6840 §5.7, RFC 4035 §4.9.3).
The query sets AD (RFC 6840 §5.7) and DO (RFC 3225) so such a resolver reports it.

Failures are exceptions: `NotFound` (NXDOMAIN or no records of the type, RFC 2308), `ServFail`
(the resolver answered with an error, e.g. a DNSSEC validation failure) and `ResolverUnreachable`
(no answer at all). dnspython does the wire work; `MockResolver` answers from a dict in unit tests.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.reversename

__all__ = [
    "Answer",
    "DnsError",
    "DnsPythonResolver",
    "MockResolver",
    "NotFound",
    "Resolver",
    "ResolverUnreachable",
    "ServFail",
    "lookup_ips",
    "parse_nameserver",
    "reverse_name",
]


@dataclass(frozen=True, slots=True)
class Answer:
    """Records of one type at a name, after following CNAMEs (RFC 1034 §3.6.2)."""

    name: str  # the canonical name, lower case, no trailing dot
    rtype: str
    records: tuple[str, ...]
    authentic: bool
    ttl: float = 0.0  # seconds the answer may be kept (DnsPythonResolver; 0: unknown)


class DnsError(Exception):
    """A lookup that did not give records."""

    def __init__(self, name: str, rtype: str, reason: str) -> None:
        super().__init__(f"{name} {rtype}: {reason}")
        self.name = name
        self.rtype = rtype
        self.reason = reason


class NotFound(DnsError):
    """NXDOMAIN (`nxdomain`), or the name exists without records of the type (RFC 2308)."""

    def __init__(self, name: str, rtype: str, *, nxdomain: bool, authentic: bool = False) -> None:
        super().__init__(name, rtype, "no such name" if nxdomain else "no records of this type")
        self.nxdomain = nxdomain
        self.authentic = authentic
        self.ttl: float | None = None  # how long it may be kept (RFC 2308 §5), when known


class ServFail(DnsError):
    """The resolver answered with an error (SERVFAIL, REFUSED): often a failed DNSSEC validation."""


class ResolverUnreachable(DnsError):
    """The resolver did not answer (timeout, connection refused)."""


class Resolver(Protocol):
    """What the checks need from DNS: one typed answer per query."""

    trusted: bool  # whether `authentic` can be true at all (RFC 6840 §5.7)

    async def query(self, name: str, rtype: str) -> Answer:
        """Records of `rtype` at `name`; raises NotFound, ServFail or ResolverUnreachable."""
        ...


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


@functools.lru_cache(maxsize=1024)
def reverse_name(ip: str) -> str:
    """The PTR name of an address (RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa)."""
    return _norm(dns.reversename.from_address(ip).to_text())


# The server's answer cache: at most this many (name, type) outcomes, each kept for its TTL
# (a negative one for the SOA's, RFC 2308 §5) and never longer than MEMO_MAX_TTL.
MEMO_MAX_ENTRIES: Final = 4096
MEMO_MAX_TTL: Final = 3600.0


def _negative_ttl(response: dns.message.Message | None) -> float | None:
    """RFC 2308 §5: a negative answer is cached for the minimum of the SOA record's TTL and its
    MINIMUM field; None without an SOA in the authority section (then it is not cached)."""
    if response is None:
        return None
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset) > 0:
            return float(min(rrset.ttl, rrset[0].minimum))
    return None


def parse_nameserver(text: str) -> tuple[str, int]:
    """`IP`, `IP:PORT`, `[IPv6]:PORT` or `IPv6` → (ip, port); ValueError with a reason."""
    text = text.strip()
    port = 53
    host = text
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"not an IP address: {host!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return ip, port


class DnsPythonResolver:
    """A stub resolver (dnspython) that asks the given recursive resolvers.

    No cache by default (dnscheck must see what is published now). The mail server turns on
    `cache`: outcomes (records with their AD flag, or "not found") are then kept per name and
    type for their TTL, as a caching resolver keeps them (RFC 1035 §7.4, RFC 2308 §5 for the
    negative ones), so a repeated question is a dict lookup instead of dnspython's resolution
    machinery (10 % of the server's CPU per delivered message, bench/PROFILE.md). Failures
    (SERVFAIL, timeouts) are never kept."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]],
        *,
        trusted: bool | None = None,
        timeout: float = 5.0,
        cache: bool = False,
    ) -> None:
        if not nameservers:
            raise ValueError("no nameservers")
        self.nameservers = list(nameservers)
        # RFC 6840 §5.7: only trust AD from a resolver over a secure channel; loopback is.
        self.trusted = (
            all(ipaddress.ip_address(ip).is_loopback for ip, _ in nameservers)
            if trusted is None
            else trusted
        )
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
        res.use_edns(0, dns.flags.DO, 1232)  # RFC 3225: DO, so DNSSEC data is considered
        res.flags = dns.flags.RD | dns.flags.AD  # RFC 6840 §5.7: ask for the AD bit
        res.timeout = min(2.0, timeout)
        res.lifetime = timeout
        res.cache = None
        self._res = res
        self._memo: dict[tuple[str, str], tuple[float, Answer | NotFound]] | None = (
            {} if cache else None
        )

    @classmethod
    def from_system(cls, path: str = "/etc/resolv.conf") -> DnsPythonResolver:
        """The nameservers of resolv.conf; trusted only when all are on loopback."""
        res = dns.resolver.Resolver(filename=path)
        return cls([(str(ns), 53) for ns in res.nameservers])

    def _authentic(self, response: dns.message.Message | None) -> bool:
        return bool(
            self.trusted and response is not None and response.flags & dns.flags.AD
        )  # RFC 4035 §3.2.3 AD bit

    async def query(self, name: str, rtype: str) -> Answer:
        memo = self._memo
        if memo is None:
            return await self._query(name, rtype)
        key = (_norm(name), rtype.upper())
        hit = memo.get(key)
        if hit is not None:
            if hit[0] > time.monotonic():
                outcome = hit[1]
                if isinstance(outcome, NotFound):
                    raise NotFound(
                        outcome.name,
                        outcome.rtype,
                        nxdomain=outcome.nxdomain,
                        authentic=outcome.authentic,
                    )
                return outcome
            del memo[key]
        try:
            answer = await self._query(name, rtype)
        except NotFound as exc:
            if exc.ttl is not None:
                self._remember(key, exc.ttl, exc)
            raise
        self._remember(key, answer.ttl, answer)
        return answer

    def _remember(self, key: tuple[str, str], ttl: float, outcome: Answer | NotFound) -> None:
        memo = self._memo
        if memo is None or ttl <= 0:
            return
        now = time.monotonic()
        if len(memo) >= MEMO_MAX_ENTRIES:
            for k in [k for k, (expires, _) in memo.items() if expires <= now]:
                del memo[k]
            while len(memo) >= MEMO_MAX_ENTRIES:
                del memo[next(iter(memo))]  # the oldest entry
        memo[key] = (now + min(ttl, MEMO_MAX_TTL), outcome)

    async def _query(self, name: str, rtype: str) -> Answer:
        qname = _norm(name) + "."
        try:
            answer = await self._res.resolve(qname, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            responses: list[dns.message.Message] = list(
                exc.responses().values()  # type: ignore[no-untyped-call]
            )
            last = responses[-1] if responses else None
            nf = NotFound(_norm(name), rtype, nxdomain=True, authentic=self._authentic(last))
            nf.ttl = (
                _negative_ttl(last)
                if last is not None and last.rcode() == dns.rcode.NXDOMAIN
                else None
            )
            raise nf from None
        except dns.resolver.LifetimeTimeout:
            raise ResolverUnreachable(_norm(name), rtype, "timeout") from None
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            reasons = [str(e[3]) for e in errors if len(e) > 3]
            if errors and all(
                isinstance(e[3], (OSError, dns.exception.Timeout)) for e in errors if len(e) > 3
            ):
                raise ResolverUnreachable(_norm(name), rtype, "; ".join(reasons)) from None
            raise ServFail(_norm(name), rtype, "; ".join(reasons) or "server failure") from None
        except dns.exception.DNSException as exc:
            raise ServFail(_norm(name), rtype, str(exc) or type(exc).__name__) from None
        authentic = self._authentic(answer.response)
        if answer.rrset is None:
            nf = NotFound(_norm(name), rtype, nxdomain=False, authentic=authentic)
            nf.ttl = _negative_ttl(answer.response)
            raise nf
        records: list[str] = []
        for rdata in answer.rrset:
            if rdata.rdtype == dns.rdatatype.TXT:
                records.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            else:
                records.append(rdata.to_text())
        # dnspython's expiration: the smallest TTL along the CNAME chain (RFC 2181 §5.2)
        ttl = max(0.0, answer.expiration - time.time())
        return Answer(_norm(answer.canonical_name.to_text()), rtype, tuple(records), authentic, ttl)


class MockResolver:
    """Answers from a dict, for unit tests: `MockResolver({("example.test", "MX"): ["10 mx."]})`.

    `authentic` lists names whose answers are DNSSEC-authentic (all when True); `fail` names
    `(name, type)` pairs that give ServFail; `unreachable` makes every query fail. A `CNAME` entry
    is followed for other types.
    """

    def __init__(
        self,
        records: Mapping[tuple[str, str], Iterable[str]] | None = None,
        *,
        authentic: bool | Iterable[str] = False,
        fail: Iterable[tuple[str, str]] = (),
        unreachable: bool = False,
    ) -> None:
        self.records: dict[tuple[str, str], list[str]] = {
            (_norm(n), t.upper()): list(v) for (n, t), v in (records or {}).items()
        }
        self._authentic = (
            authentic if isinstance(authentic, bool) else {_norm(n) for n in authentic}
        )
        self.fail = {(_norm(n), t.upper()) for n, t in fail}
        self.unreachable = unreachable
        self.trusted = True
        self.queries: list[tuple[str, str]] = []

    def is_authentic(self, name: str) -> bool:
        if isinstance(self._authentic, bool):
            return self._authentic
        return name in self._authentic

    async def query(self, name: str, rtype: str) -> Answer:
        name, rtype = _norm(name), rtype.upper()
        self.queries.append((name, rtype))
        if self.unreachable:
            raise ResolverUnreachable(name, rtype, "timeout")
        for _ in range(8):  # RFC 1034 §3.6.2 CNAME chains, bounded
            if (name, rtype) in self.fail:
                raise ServFail(name, rtype, "server failure")
            found = self.records.get((name, rtype))
            if found:
                return Answer(name, rtype, tuple(found), self.is_authentic(name))
            cname = self.records.get((name, "CNAME"))
            if not cname or rtype == "CNAME":
                break
            name = _norm(cname[0])
        exists = any(n == name for n, _ in self.records)
        raise NotFound(name, rtype, nxdomain=not exists, authentic=self.is_authentic(name))


async def lookup_ips(resolver: Resolver, name: str) -> tuple[list[str], bool]:
    """A and AAAA addresses of a name, and whether all answers were authentic.

    Raises ServFail/ResolverUnreachable; a name without addresses gives an empty list.
    """
    ips: list[str] = []
    authentic = True
    for rtype in ("A", "AAAA"):
        try:
            answer = await resolver.query(name, rtype)
        except NotFound as exc:
            authentic = authentic and exc.authentic
            continue
        ips += [str(ipaddress.ip_address(r)) for r in answer.records]
        authentic = authentic and answer.authentic
    return ips, authentic
