"""IPv4/IPv6 alternation between delivery attempts, as mox (smtpclient.GatherIPs, Msg.DialedIPs).

- Each message remembers, per host, the IPs dialed so far (the queue column `dialed_ips`).
- The next attempt to that host starts with the address family it did not dial last, so a
  host whose IPv4 address is blocklisted (or whose IPv6 route is broken) gets the other family
  on the retry. Within a family, addresses not dialed before come first; otherwise the DNS order
  is kept.
- A permanent 5.7.x reply (RFC 3463 §3.8, security or policy) on the first attempt from a host
  with both families is made temporary, so that the other family gets its try before the
  sender gets a bounce (as mox: the blocklisted-IP workaround).
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3

__all__ = ["dual_stack", "dumps", "loads", "order_ips", "policy_refusal", "save"]

MAX_PER_HOST = 10  # older dials tell nothing more about which family to prefer


def loads(text: str) -> dict[str, list[str]]:
    """The `dialed_ips` column: {host: [ip, ...]} in dial order; bad or empty text is none."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(h): [str(ip) for ip in ips] for h, ips in value.items() if isinstance(ips, list)}


def dumps(dialed: dict[str, list[str]]) -> str:
    return json.dumps({h: ips[-MAX_PER_HOST:] for h, ips in dialed.items()}, sort_keys=True)


def _is4(ip: str) -> bool:
    return ipaddress.ip_address(ip).version == 4


def order_ips(ips: list[str], dialed: list[str]) -> list[str]:
    """The order to dial `ips` of one host in, given the IPs dialed before (as mox's
    GatherIPs: the other family than the last dialed first, then IPs not yet dialed)."""
    if not dialed:
        return list(ips)
    last4 = _is4(dialed[-1])
    tried = set(dialed)
    # sorted() is stable: the DNS order stays within each group.
    return sorted(ips, key=lambda ip: (_is4(ip) == last4, ip in tried))


def dual_stack(ips: list[str]) -> bool:
    """Whether a host has addresses of both families."""
    families = {_is4(ip) for ip in ips}
    return len(families) == 2


def policy_refusal(code: int, text: str) -> bool:
    """A permanent reply with enhanced status 5.7.x (RFC 3463 §3.8)."""
    return 500 <= code < 600 and text.lstrip().startswith("5.7.")


def save(conn: sqlite3.Connection, ids: list[int], dialed: dict[str, list[str]]) -> None:
    """Store the dialed IPs for queued messages (one delivery attempt's group)."""
    marks = ",".join("?" * len(ids))
    conn.execute(
        f"UPDATE msgs SET dialed_ips = ? WHERE id IN ({marks})",  # noqa: S608
        (dumps(dialed), *ids),
    )
