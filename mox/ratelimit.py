"""Rate and concurrency limits per IP class, shared by SMTP, IMAP and logins (as mox's ratelimit).

An IP counts against three classes at once: IPv4 /32, /26, /21 and IPv6 /64, /48, /32, each with
its own limit, so one host, a small network and a larger one are limited separately.
Windows are fixed (the current minute or day); counts live in memory and are pruned as they age.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict
from collections.abc import Callable

__all__ = ["ConnectionLimiter", "RateLimiter", "ip_classes"]

V4_PREFIXES = (32, 26, 21)
V6_PREFIXES = (64, 48, 32)


def ip_classes(ip: str) -> tuple[str, str, str]:
    """The three network keys an address counts against."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (f"?{ip}", f"?{ip}", f"?{ip}")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefixes = V4_PREFIXES if addr.version == 4 else V6_PREFIXES
    nets = [ipaddress.ip_network(f"{addr}/{p}", strict=False) for p in prefixes]
    return (str(nets[0]), str(nets[1]), str(nets[2]))


class RateLimiter:
    """At most `limits[i]` events per `window` seconds for class i of an IP.

    A sliding window, approximated with two fixed ones (as mox's ratelimit): the previous
    window's count weighs in by the part of it that still overlaps the last `window` seconds, so
    a burst that straddles a window boundary is counted whole.
    """

    def __init__(
        self,
        window: float,
        limits: tuple[int, int, int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.limits = limits
        self.clock = clock
        self._slot = -1
        self._counts: dict[str, int] = defaultdict(int)
        self._previous: dict[str, int] = {}

    def _rotate(self) -> float:
        """Advance the windows; returns the weight of the previous window's counts."""
        now = self.clock()
        slot = int(now // self.window)
        if slot != self._slot:
            self._previous = dict(self._counts) if slot == self._slot + 1 else {}
            self._slot = slot
            self._counts.clear()
        return 1.0 - (now % self.window) / self.window

    def _total(self, key: str, weight: float) -> float:
        return self._counts[key] + self._previous.get(key, 0) * weight

    def can_add(self, ip: str, n: int = 1) -> bool:
        weight = self._rotate()
        keys = ip_classes(ip)
        return all(
            self._total(k, weight) + n <= lim for k, lim in zip(keys, self.limits, strict=True)
        )

    def add(self, ip: str, n: int = 1) -> bool:
        """Count n events if that stays within the limits; False (and count nothing) if not."""
        if not self.can_add(ip, n):
            return False
        for k in ip_classes(ip):
            self._counts[k] += n
        return True

    def count(self, ip: str, n: int = 1) -> None:
        """Count events unconditionally (e.g. failures that already happened)."""
        self._rotate()
        for k in ip_classes(ip):
            self._counts[k] += n


class ConnectionLimiter:
    """Concurrent connections per IP class, and the rate of new ones (mox's defaults)."""

    def __init__(
        self,
        concurrent: tuple[int, int, int] = (30, 90, 270),
        per_minute: tuple[int, int, int] = (300, 900, 2700),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.concurrent = concurrent
        self.rate = RateLimiter(60, per_minute, clock)
        self._open: dict[str, int] = defaultdict(int)

    def open(self, ip: str) -> bool:
        """Register a new connection; False if it must be refused (421/BYE)."""
        keys = ip_classes(ip)
        if any(self._open[k] >= lim for k, lim in zip(keys, self.concurrent, strict=True)):
            return False
        if not self.rate.add(ip):
            return False
        for k in keys:
            self._open[k] += 1
        return True

    def close(self, ip: str) -> None:
        for k in ip_classes(ip):
            self._open[k] -= 1
            if self._open[k] <= 0:
                del self._open[k]
