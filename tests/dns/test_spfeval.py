"""SPF evaluation (RFC 7208) over the MockResolver: mechanisms, limits and errors."""

from __future__ import annotations

import pytest

from mox.dns.resolver import MockResolver
from mox.dns.spfeval import check_host

IP = "192.0.2.10"


def resolver(**txt: str) -> MockResolver:
    records: dict[tuple[str, str], list[str]] = {
        ("mail.example.test", "A"): [IP],
        ("mail.example.test", "AAAA"): ["2001:db8::10"],
        ("example.test", "MX"): ["10 mail.example.test."],
        ("10.2.0.192.in-addr.arpa", "PTR"): ["mail.example.test."],
    }
    for name, text in txt.items():
        records[(name.replace("_", "."), "TXT")] = [text]
    return MockResolver(records)


@pytest.mark.parametrize(
    ("record", "ip", "expected"),
    [
        ("v=spf1 ip4:192.0.2.10 -all", IP, "pass"),  # RFC 7208 §5.6
        ("v=spf1 ip4:192.0.2.0/24 -all", IP, "pass"),
        ("v=spf1 ip4:198.51.100.1 -all", IP, "fail"),
        ("v=spf1 ip4:198.51.100.1 ~all", IP, "softfail"),
        ("v=spf1 ip4:198.51.100.1 ?all", IP, "neutral"),
        ("v=spf1 ip4:198.51.100.1", IP, "neutral"),  # RFC 7208 §4.7: default result
        ("v=spf1 mx -all", IP, "pass"),  # RFC 7208 §5.4
        ("v=spf1 a:mail.example.test -all", IP, "pass"),  # RFC 7208 §5.3
        ("v=spf1 a:mail.example.test -all", "2001:db8::10", "pass"),
        ("v=spf1 a:mail.example.test/16 -all", "192.0.9.9", "pass"),
        ("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::99", "pass"),
        ("v=spf1 ptr -all", IP, "pass"),  # RFC 7208 §5.5: validated name below the domain
        ("v=spf1 ptr:other.test -all", IP, "fail"),
        ("v=spf1 include:inc.example.test -all", IP, "pass"),  # RFC 7208 §5.2
        ("v=spf1 redirect=inc.example.test", IP, "pass"),  # RFC 7208 §6.1
        ("v=spf1 include:none.example.test -all", IP, "permerror"),  # §5.2 none → permerror
        ("v=spf1 exists:%{ir}.bl.example.test -all", IP, "pass"),  # RFC 7208 §7 macros
        ("v=spf1 bogus -all", IP, "permerror"),
    ],
)
async def test_results(record: str, ip: str, expected: str) -> None:
    res = resolver(example_test=record, inc_example_test="v=spf1 a:mail.example.test")
    res.records[("10.2.0.192.bl.example.test", "A")] = ["127.0.0.2"]
    res.records[("example.test", "A")] = ["203.0.113.1"]
    assert (await check_host(res, ip, "example.test")).result == expected


async def test_no_record_and_two_records() -> None:
    res = MockResolver({("example.test", "TXT"): ["google-site-verification=x"]})
    assert (await check_host(res, IP, "example.test")).result == "none"  # RFC 7208 §4.5
    res.records[("example.test", "TXT")] = ["v=spf1 -all", "v=spf1 +all"]
    assert (await check_host(res, IP, "example.test")).result == "permerror"


async def test_temperror_on_servfail() -> None:
    res = MockResolver({("example.test", "TXT"): ["v=spf1 mx -all"]}, fail=[("example.test", "MX")])
    result = await check_host(res, IP, "example.test")
    assert result.result == "temperror"  # RFC 7208 §4.4


async def test_lookup_limit() -> None:
    # RFC 7208 §4.6.4: more than 10 DNS-querying terms is a permerror.
    records = {("example.test", "TXT"): ["v=spf1 " + " ".join(["a"] * 11) + " -all"]}
    records[("example.test", "A")] = ["203.0.113.1"]
    result = await check_host(MockResolver(records), IP, "example.test")
    assert result.result == "permerror"
    assert "10" in result.reason


async def test_void_lookup_limit() -> None:
    records = {("example.test", "TXT"): ["v=spf1 a:x1.test a:x2.test a:x3.test -all"]}
    result = await check_host(MockResolver(records), IP, "example.test")
    assert result.result == "permerror"
    assert "void" in result.reason


async def test_include_loop() -> None:
    records = {
        ("a.test", "TXT"): ["v=spf1 include:b.test -all"],
        ("b.test", "TXT"): ["v=spf1 include:a.test -all"],
    }
    assert (await check_host(MockResolver(records), IP, "a.test")).result == "permerror"
