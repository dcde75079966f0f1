"""A DNSBL zone served by Knot on loopback, asked by the real server through the dnspython
resolver while messages arrive over real SMTP: a listed IP without reputation is refused with
451, the same message from a sender we wrote to is accepted."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mox.dns.resolver import Answer, DnsPythonResolver, MockResolver
from mox.junk import analyze, dnsbl
from mox.store import Account
from tests.dns.lab import Knot
from tests.serverthread import ServerThread, mock_world, start_server
from tests.smtpserver.raw import stored

pytestmark = pytest.mark.integration

ZONE = """$ORIGIN bl.test.
$TTL 60
@ IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 60
@ IN NS ns.bl.test.
ns IN A 127.0.0.1
2.0.0.127 IN A 127.0.0.2
2.0.0.127 IN TXT "listed: test entry, see https://bl.test/"
"""


class SplitResolver:
    """The DNSBL zone from Knot over real DNS, everything else from the mock world."""

    def __init__(self, knot: Knot) -> None:
        self.real = DnsPythonResolver([("127.0.0.1", knot.port)], timeout=3)
        self.mock: MockResolver = mock_world()
        self.mock.records[("2.0.0.127.in-addr.arpa", "PTR")] = ["relay.example.test."]
        self.mock.records[("relay.example.test", "A")] = ["127.0.0.2"]
        self.trusted = False
        self.dnsbl_queries: list[str] = []

    async def query(self, name: str, rtype: str) -> Answer:
        if name.rstrip(".").lower().endswith(".bl.test"):
            self.dnsbl_queries.append(name)
            return await self.real.query(name, rtype)
        return await self.mock.query(name, rtype)


def tweak(data: dict[str, Any]) -> None:
    data["accounts"]["alice"]["junk_filter"] = {}
    data["accounts"]["alice"]["no_first_time_sender_delay"] = True
    data["listeners"]["test"]["smtp"]["dnsbls"] = ["bl.test"]


@pytest.fixture
def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerThread, dict[str, int], SplitResolver]]:
    monkeypatch.setattr(analyze, "FIRST_TIME_SENDER_DELAY", 0.01)
    dnsbl._health.clear()
    knot = Knot(tmp_path / "knot", {"bl.test": ZONE}, signed=set()).start()
    resolver = SplitResolver(knot)
    srv, ports = start_server(tmp_path, trustme.CA(), tweak, resolver=resolver)
    yield srv, ports, resolver
    srv.stop()
    knot.stop()
    dnsbl._health.clear()


MESSAGE = (
    b"From: Mallory <mallory@example.org>\r\nTo: alice@example.test\r\nSubject: offer\r\n"
    b"Message-Id: <knot-1@example.org>\r\n\r\nan ordinary looking note\r\n"
)


def running_account(srv: ServerThread) -> Account:
    assert srv.running is not None
    return srv.running.store.account("alice")


def send(port: int, source: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
        c.ehlo("relay.example.test")
        c.sendmail("mallory@example.org", ["alice@example.test"], MESSAGE)


def test_knot_dnsbl_refuses_listed_ip(
    setup: tuple[ServerThread, dict[str, int], SplitResolver],
) -> None:
    srv, ports, resolver = setup
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], "127.0.0.2")
    assert info.value.smtp_code == 451
    assert "2.0.0.127.bl.test" in resolver.dnsbl_queries  # asked Knot, after the health check
    assert "1.0.0.127.bl.test" in resolver.dnsbl_queries
    assert len(stored(srv, "alice", "Rejects")) == 1
    assert running_account(srv).has_sent_to("mallory@example.org") is False
    srv.call(running_account(srv).record_outgoing(["mallory@example.org"]))
    send(ports["smtp"], "127.0.0.2")
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: msgtofull" in inbox[0]
