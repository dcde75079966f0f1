"""The resolver layer: nameserver syntax, the MockResolver, and AD-bit trust (RFC 6840 §5.7)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mox.dns.resolver import (
    DnsError,
    DnsPythonResolver,
    MockResolver,
    NotFound,
    ResolverUnreachable,
    ServFail,
    lookup_ips,
    parse_nameserver,
    reverse_name,
)
from tests.dns.lab import Knot


def test_parse_nameserver() -> None:
    assert parse_nameserver("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_nameserver("127.0.0.1:5301") == ("127.0.0.1", 5301)
    assert parse_nameserver("::1") == ("::1", 53)
    assert parse_nameserver("[::1]:5301") == ("::1", 5301)
    for bad in ("resolver.test", "127.0.0.1:0", "[::1]x"):
        with pytest.raises(ValueError, match=r"."):
            parse_nameserver(bad)


def test_reverse_names() -> None:
    assert reverse_name("127.0.0.2") == "2.0.0.127.in-addr.arpa"  # RFC 1035 §3.5
    assert reverse_name("2001:db8::1").endswith(".8.b.d.0.1.0.0.2.ip6.arpa")  # RFC 3596 §2.5


def test_trust_defaults_to_loopback_only() -> None:
    assert DnsPythonResolver([("127.0.0.1", 53)]).trusted
    assert DnsPythonResolver([("::1", 53)]).trusted
    assert not DnsPythonResolver([("192.0.2.53", 53)]).trusted
    assert DnsPythonResolver([("192.0.2.53", 53)], trusted=True).trusted
    assert not DnsPythonResolver([("127.0.0.1", 53), ("192.0.2.53", 53)]).trusted


async def test_mock_resolver() -> None:
    res = MockResolver(
        {
            ("Mail.Example.Test.", "a"): ["192.0.2.1"],
            ("alias.example.test", "CNAME"): ["mail.example.test."],
            ("example.test", "TXT"): ["v=spf1 -all"],
        },
        authentic=["mail.example.test"],
        fail=[("broken.example.test", "A")],
    )
    answer = await res.query("alias.example.test", "A")
    assert answer.name == "mail.example.test"  # RFC 1034 §3.6.2: the canonical name
    assert answer.records == ("192.0.2.1",)
    assert answer.authentic
    with pytest.raises(NotFound) as exc:
        await res.query("example.test", "MX")
    assert not exc.value.nxdomain
    with pytest.raises(NotFound) as exc:
        await res.query("nope.example.test", "MX")
    assert exc.value.nxdomain
    with pytest.raises(ServFail):
        await res.query("broken.example.test", "A")
    assert await lookup_ips(res, "mail.example.test") == (["192.0.2.1"], True)
    with pytest.raises(ResolverUnreachable):
        await MockResolver(unreachable=True).query("example.test", "A")


@pytest.mark.integration
async def test_cache_keeps_answers_for_their_ttl(tmp_path: Path) -> None:
    """The server's resolver caches for the records' TTL; dnscheck's does not cache at all.

    Asked straight at Knot, whose answers carry the zone's TTL (the test Unbound serves TTL 0)."""
    zone = (
        "$ORIGIN cached.test.\n$TTL 300\n"
        "@ IN SOA ns.cached.test. h.cached.test. 1 3600 600 86400 300\n"
        "@ IN NS ns\nns IN A 127.0.0.1\n@ IN MX 10 mx.cached.test.\n"
        "short 1 IN A 127.0.0.9\n"
    )
    knot = Knot(tmp_path / "knot", {"cached.test": zone}, signed=set()).start()
    try:
        res = DnsPythonResolver([("127.0.0.1", knot.port)], cache=True, timeout=2)
        first = await res.query("cached.test", "MX")
        assert first.records == ("10 mx.cached.test.",)
        assert 0 < first.ttl <= 300
        with pytest.raises(NotFound) as nx:
            await res.query("nope.cached.test", "A")
        assert nx.value.nxdomain
        assert nx.value.ttl == 300  # RFC 2308 §5: min(SOA TTL, MINIMUM)
        with pytest.raises(NotFound) as nodata:
            await res.query("cached.test", "TXT")
        assert not nodata.value.nxdomain
        assert (await res.query("short.cached.test", "A")).records == ("127.0.0.9",)
        knot.stop()  # from now on only the cache can answer
        again = await res.query("Cached.Test.", "MX")  # the same name, as DNS compares names
        assert again.records == first.records
        with pytest.raises(NotFound) as nx:  # negative answers are kept too
            await res.query("nope.cached.test", "A")
        assert nx.value.nxdomain
        with pytest.raises(NotFound) as nodata:
            await res.query("cached.test", "TXT")
        assert not nodata.value.nxdomain
        await asyncio.sleep(1.2)  # past the TTL of 1: asked again, and Knot is gone
        with pytest.raises(DnsError) as gone:
            await res.query("short.cached.test", "A")
        assert not isinstance(gone.value, NotFound)
        uncached = DnsPythonResolver([("127.0.0.1", knot.port)], timeout=1)
        with pytest.raises(DnsError):
            await uncached.query("cached.test", "MX")
    finally:
        knot.stop()
