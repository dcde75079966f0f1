"""A tiny authoritative DNS server on loopback UDP, for tests that run `mox serve` as a process
but are not about DNS: it answers from a dict, so the server never asks the machine's resolver.
Tests about DNS itself use Knot and Unbound (tests/dns/lab.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = ["DnsStub"]


class DnsStub:
    """`DnsStub({("example.org", "A"): ["192.0.2.10"]})`; `.address` is `127.0.0.1:PORT`."""

    def __init__(self, records: Mapping[tuple[str, str], Sequence[str]]) -> None:
        self.records = {
            (n.rstrip(".").lower(), t.upper()): list(v) for (n, t), v in records.items()
        }
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        q = query.question[0]
        name = q.name.to_text().rstrip(".").lower()
        rtype = dns.rdatatype.to_text(q.rdtype)
        values = self.records.get((name, rtype))
        if values:
            texts = [f'"{v}"' if rtype == "TXT" else v for v in values]
            resp.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", rtype, texts))
        elif not any(n == name for n, _ in self.records):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp

    def close(self) -> None:
        self.sock.close()
        self._thread.join(5)
