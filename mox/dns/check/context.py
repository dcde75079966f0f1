"""What every section of `mox dnscheck` gets: the facts from the config, the expected records, the
resolver, and the addresses and ports to connect to (overridable, so tests use loopback)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from mox.dns.expected import DomainFacts, Facts, RecordSpec
from mox.dns.resolver import DnsError, NotFound, Resolver, lookup_ips
from mox.dns.zone import record_lines

__all__ = ["CheckOptions", "Context"]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Where the connecting checks connect; defaults are the real ports of the services."""

    smtp_port: int = 25
    https_port: int = 443
    connect_ip: str | None = None  # connect here instead of the addresses found in DNS
    tls_ca: Path | None = None  # trust only this CA bundle, instead of the system's
    timeout: float = 10.0


@dataclass
class Context:
    facts: Facts
    specs: list[RecordSpec]
    resolver: Resolver
    options: CheckOptions = field(default_factory=CheckOptions)

    def fix(self, section: str, owner: str | None = None, name: str | None = None) -> list[str]:
        """Zone lines of the expected records of a section (for one domain, or the host)."""
        lines: list[str] = []
        for spec in self.specs:
            if spec.section != section or (owner is not None and spec.owner != owner):
                continue
            if name is not None and spec.name != name:
                continue
            lines += [line.removeprefix(";; ") for line in record_lines(spec)]
        return lines

    def expected(self, section: str, owner: str | None = None) -> list[RecordSpec]:
        return [
            s for s in self.specs if s.section == section and (owner is None or s.owner == owner)
        ]

    def our_ip(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr == ipaddress.ip_address(p) for p in self.facts.public_ips)

    async def txt(self, name: str, prefix: str) -> list[str]:
        """TXT records at name that start with `prefix` (case-insensitive); [] when none."""
        try:
            answer = await self.resolver.query(name, "TXT")
        except NotFound:
            return []
        return [r for r in answer.records if r.lower().startswith(prefix.lower())]

    async def ips(self, name: str) -> list[str]:
        try:
            found, _ = await lookup_ips(self.resolver, name)
        except DnsError:
            return []
        return found

    def domain(self, name: str) -> DomainFacts:
        return next(d for d in self.facts.domains if d.name == name)
