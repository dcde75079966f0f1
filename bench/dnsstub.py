"""A tiny DNS server on loopback UDP for our server during the benchmark (no query ever leaves
the machine): the sender domain exists, everything else does not (no SPF, DKIM, DMARC, PTR).
Negative answers carry an SOA record in the authority section, as RFC 2308 §3 requires of an
authoritative server, so resolvers may keep them for its TTL (RFC 2308 §5).

Run as `python -m bench.dnsstub PORTFILE`: it binds a free port, writes it to PORTFILE and serves
until killed.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

RECORDS: dict[tuple[str, str], list[str]] = {
    ("example.org", "A"): ["127.0.0.1"],
    ("example.org", "MX"): ["10 mail.example.org."],
    ("mail.example.org", "A"): ["127.0.0.1"],
    ("client.example.org", "A"): ["127.0.0.1"],  # the load generator's EHLO name
    ("mail.bench.test", "A"): ["127.0.0.1"],
}


TTL = 60
SOA = "ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60"  # MINIMUM: the negative TTL


def _zone(name: str) -> str:
    """The zone a name is answered from: its last two labels (good enough for an SOA owner)."""
    labels = name.split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else name


def answer(query: dns.message.Message) -> dns.message.Message:
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.AA
    q = query.question[0]
    name = q.name.to_text().rstrip(".").lower()
    rtype = dns.rdatatype.to_text(q.rdtype)
    values = RECORDS.get((name, rtype))
    if values:
        resp.answer.append(dns.rrset.from_text_list(q.name, TTL, "IN", rtype, values))
        return resp
    if not any(n == name for n, _ in RECORDS):
        resp.set_rcode(dns.rcode.NXDOMAIN)
    zone = _zone(name)
    resp.authority.append(dns.rrset.from_text(zone + ".", TTL, "IN", "SOA", SOA.format(zone=zone)))
    return resp


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    Path(sys.argv[1]).write_text(str(sock.getsockname()[1]))
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            continue
        sock.sendto(answer(query).to_wire(), peer)


if __name__ == "__main__":
    main()
