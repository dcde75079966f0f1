"""DNS blocklist lookups (RFC 5782): with MockResolver, and over real DNS on loopback (the
dnspython resolver asking a small authoritative server)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from mox.dns.resolver import DnsPythonResolver, MockResolver
from mox.junk import dnsbl
from tests.dnsstub import DnsStub

ZONE = {
    ("2.0.0.127.bl.test", "A"): ["127.0.0.2"],
    ("2.0.0.127.bl.test", "TXT"): ["listed for testing"],
    ("7.113.0.192.bl.test", "A"): ["127.0.0.4"],
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test", "A"): ["127.0.0.2"],
}


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    dnsbl._health.clear()
    yield
    dnsbl._health.clear()


def test_query_names_rfc5782() -> None:
    assert dnsbl.query_name("192.0.2.99", "bl.test") == "99.2.0.192.bl.test"
    assert dnsbl.query_name("2001:db8::1", "bl.test.").startswith("1.0.0.0.0.0.0.0")
    assert dnsbl.query_name("2001:db8::1", "bl.test").endswith("8.b.d.0.1.0.0.2.bl.test")


async def test_lookup_mock() -> None:
    r = MockResolver(ZONE)
    assert await dnsbl.lookup(r, "bl.test", "192.0.113.7") == dnsbl.Listing("fail", "")
    assert await dnsbl.lookup(r, "bl.test", "192.0.113.8") == dnsbl.Listing("pass")
    listed = await dnsbl.lookup(r, "bl.test", "2001:db8::1")
    assert listed.status == "fail"
    assert await dnsbl.healthy(r, "bl.test")
    fail = MockResolver(ZONE, fail=[("8.113.0.192.bl.test", "A")])
    assert (await dnsbl.lookup(fail, "bl.test", "192.0.113.8")).status == "temperror"


async def test_unhealthy_zone_is_skipped() -> None:
    # Lists everything, 127.0.0.1 too: broken (RFC 5782 §5), so it must not be used.
    broken = dict(ZONE)
    broken[("1.0.0.127.bl.test", "A")] = ["127.0.0.2"]
    r = MockResolver(broken)
    assert not await dnsbl.healthy(r, "bl.test")
    assert await dnsbl.check(r, ["bl.test"], "192.0.113.7") is None
    good = MockResolver(ZONE)
    hit = await dnsbl.check(good, ["empty.test", "bl.test"], "192.0.113.7")
    assert hit is not None
    assert hit[0] == "bl.test"


async def test_lookup_real_dns_on_loopback() -> None:
    stub = DnsStub(ZONE)
    try:
        r = DnsPythonResolver([("127.0.0.1", stub.port)], timeout=3)
        listing = await dnsbl.lookup(r, "bl.test", "127.0.0.2")
        assert listing == dnsbl.Listing("fail", "listed for testing")
        assert (await dnsbl.lookup(r, "bl.test", "127.0.0.1")).status == "pass"
        assert await dnsbl.healthy(r, "bl.test")
        hit = await dnsbl.check(r, ["bl.test"], "192.0.113.7")
        assert hit is not None
        assert hit[1].status == "fail"
    finally:
        with contextlib.suppress(OSError):
            stub.sock.shutdown(socket.SHUT_RDWR)  # wakes the stub's blocked recvfrom
        stub.close()
