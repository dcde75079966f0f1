"""Run all dnscheck sections concurrently and collect them into a `Report`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from mox.dns.check.authchecks import check_dkim, check_dmarc, check_spf, check_tlsrpt
from mox.dns.check.connect import check_tls
from mox.dns.check.context import CheckOptions, Context
from mox.dns.check.hostchecks import check_dane, check_dnssec, check_iprev, check_mx
from mox.dns.check.model import Report, Section
from mox.dns.check.servicechecks import check_autoconfig, check_caa, check_mta_sts, check_srv
from mox.dns.expected import Facts, build_records
from mox.dns.resolver import DnsError, NotFound, Resolver, ResolverUnreachable

__all__ = ["CannotCheck", "run_checks"]


class CannotCheck(Exception):
    """The check could not run at all (exit 2): e.g. the resolver does not answer."""


async def _guarded(name: str, target: str, coro: Awaitable[Section]) -> Section:
    """A section that fails unexpectedly reports that as an error instead of stopping the rest."""
    try:
        return await coro
    except DnsError as exc:
        sec = Section(name, target)
        sec.error(f"lookup failed: {exc}")
        return sec


async def run_checks(
    facts: Facts,
    resolver: Resolver,
    options: CheckOptions | None = None,
    *,
    resolver_name: str = "",
    sections: Sequence[str] = (),
) -> Report:
    """Check every domain of `facts` (and the host); raises CannotCheck when DNS is unreachable."""
    ctx = Context(facts, build_records(facts), resolver, options or CheckOptions())
    first = facts.domains[0].name if facts.domains else facts.hostname
    try:
        await resolver.query(first, "SOA")  # preflight: is anyone answering?
    except ResolverUnreachable as exc:
        raise CannotCheck(f"resolver {resolver_name or ''} did not answer: {exc.reason}") from None
    except (NotFound, DnsError):
        pass  # an answer, even an error, means the resolver works
    host = facts.hostname
    jobs: list[tuple[str, str, Awaitable[Section]]] = []
    zones = [d.name for d in facts.domains]
    if not any(host == z or host.endswith("." + z) for z in zones):
        zones.append(host)
    jobs += [("DNSSEC", z, check_dnssec(ctx, z)) for z in zones]
    jobs += [
        ("IPRev", host, check_iprev(ctx)),
        ("TLS", host, check_tls(ctx)),
        ("DANE", host, check_dane(ctx)),
        ("SPF", host, check_spf(ctx, host, "")),
        ("TLSRPT", host, check_tlsrpt(ctx, host, "", facts.host_tlsrpt)),
    ]
    for dom in facts.domains:
        d = dom.name
        tlsrpt = dom.config.tlsrpt
        address = f"{tlsrpt.localpart}@{d}" if tlsrpt is not None else None
        jobs += [
            ("MX", d, check_mx(ctx, d)),
            ("SPF", d, check_spf(ctx, d, d)),
            ("DKIM", d, check_dkim(ctx, d)),
            ("DMARC", d, check_dmarc(ctx, d)),
            ("TLSRPT", d, check_tlsrpt(ctx, d, d, address)),
            ("MTA-STS", d, check_mta_sts(ctx, d)),
            ("SRV", d, check_srv(ctx, d)),
            ("Autoconfig", d, check_autoconfig(ctx, d)),
            ("CAA", d, check_caa(ctx, d)),
        ]
    wanted = {s.lower() for s in sections}
    selected = [(n, t, c) for n, t, c in jobs if not wanted or n.lower() in wanted]
    for n, t, c in jobs:
        if (n, t, c) not in selected and asyncio.iscoroutine(c):
            c.close()  # never awaited: close to avoid a "never awaited" warning
    results = await asyncio.gather(*(_guarded(n, t, c) for n, t, c in selected))
    report = Report(host, [d.name for d in facts.domains], resolver_name)
    report.sections = list(results)
    return report
