"""DMARC evaluation (RFC 7489 §6.6, RFC 9091 np=), iprev (RFC 8601 §3) with a mock resolver."""

from __future__ import annotations

import random

import pytest

from mox.dkim.verify import DkimResult
from mox.dmarc import aligned, from_domain, org_domain, verify
from mox.dns.resolver import MockResolver
from mox.iprev import lookup
from mox.spf import SpfResult

REJECT = "v=DMARC1;p=reject;rua=mailto:dmarc@example.org"


def spf(status: str, domain: str = "example.org") -> SpfResult:
    return SpfResult(status, "mailfrom", domain, f"x@{domain}", "192.0.2.1", "mx")  # type: ignore[arg-type]


def dkim(status: str, domain: str = "example.org") -> DkimResult:
    return DkimResult(status, domain, "s1", "rsa-sha256")  # type: ignore[arg-type]


def resolver(records: dict[tuple[str, str], list[str]], **kw: object) -> MockResolver:
    return MockResolver(records, **kw)  # type: ignore[arg-type]


def test_org_domain_uses_the_public_suffix_list() -> None:
    assert org_domain("a.b.example.co.uk") == "example.co.uk"
    assert org_domain("mail.example.test") == "example.test"
    assert org_domain("Example.COM.") == "example.com"
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert not aligned("example.net", "example.org", "r")
    assert not aligned("evil.co.uk", "example.co.uk", "r")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"From: Joe <joe@Example.ORG>\r\nTo: x@y\r\n", "example.org"),
        (b"from: =?utf-8?q?J=C3=B6e?= <joe@example.org>\r\n", "example.org"),
        (b"From: a@example.org, b@example.net\r\n", None),  # RFC 7489 §6.6.1
        (b"From: a@example.org\r\nFrom: b@example.org\r\n", None),
        (b"To: a@example.org\r\n", None),
        (b"From: J\r\n <joe@folded.example>\r\n", "folded.example"),
    ],
)
def test_from_domain(header: bytes, expected: str | None) -> None:
    assert from_domain(header) == expected


async def test_pass_by_aligned_dkim_or_spf() -> None:
    r = resolver({("_dmarc.example.org", "TXT"): [REJECT]}, authentic=True)
    res = await verify(r, "example.org", [dkim("fail"), dkim("pass", "mail.example.org")], None)
    assert (res.status, res.dkim_aligned, res.spf_aligned, res.reject) == (
        "pass",
        True,
        False,
        False,
    )
    res = await verify(r, "example.org", [], spf("pass", "bounces.example.org"))
    assert (res.status, res.spf_aligned, res.policy_domain) == ("pass", True, "example.org")


async def test_fail_under_reject_rejects() -> None:
    r = resolver({("_dmarc.example.org", "TXT"): [REJECT]})
    res = await verify(
        r, "example.org", [dkim("pass", "other.example")], spf("pass", "other.example")
    )
    assert (res.status, res.policy, res.reject) == ("fail", "reject", True)
    assert res.record is not None
    assert res.record.rua == ("mailto:dmarc@example.org",)


async def test_strict_alignment() -> None:
    r = resolver({("_dmarc.example.org", "TXT"): ["v=DMARC1;p=reject;adkim=s;aspf=s"]})
    res = await verify(
        r, "example.org", [dkim("pass", "mail.example.org")], spf("pass", "b.example.org")
    )
    assert (res.status, res.reject) == ("fail", True)


async def test_subdomain_uses_org_record_sp_and_np() -> None:
    records = {
        ("_dmarc.example.org", "TXT"): ["v=DMARC1;p=reject;sp=none;np=quarantine"],
        ("exists.example.org", "A"): ["192.0.2.7"],
    }
    r = resolver(records)
    res = await verify(r, "exists.example.org", [], spf("fail"))
    assert (res.status, res.policy_domain, res.policy, res.reject) == (
        "fail",
        "example.org",
        "none",
        False,
    )
    res = await verify(r, "gone.example.org", [], spf("fail"))  # RFC 9091: does not exist
    assert (res.policy, res.reject) == ("quarantine", True)  # as mox: quarantine is refused


async def test_pct_sampling() -> None:
    r = resolver({("_dmarc.example.org", "TXT"): ["v=DMARC1;p=reject;pct=50"]})
    outcomes = set()
    rng = random.Random(5)
    for _ in range(40):
        res = await verify(r, "example.org", [], spf("fail"), rng=rng)
        assert res.status == "fail"
        outcomes.add((res.reject, res.overrides))
    assert outcomes == {(True, ()), (False, ("sampled_out",))}


async def test_none_temperror_permerror() -> None:
    res = await verify(resolver({}), "example.org", [], spf("pass"))
    assert res.status == "none"
    broken = resolver({("_dmarc.example.org", "TXT"): ["v=DMARC1;p=bogus"]})
    assert (await verify(broken, "example.org", [], None)).status == "permerror"
    down = resolver({}, fail=[("_dmarc.example.org", "TXT")])
    assert (await verify(down, "example.org", [], None)).status == "temperror"
    r = resolver({("_dmarc.example.org", "TXT"): [REJECT]})
    res = await verify(r, "example.org", [dkim("temperror")], spf("fail"))
    assert (res.status, res.reject) == ("temperror", False)
    assert (await verify(r, None, [], None)).status == "permerror"
    two = resolver({("_dmarc.example.org", "TXT"): [REJECT, "v=DMARC1;p=none"]})
    assert (await verify(two, "example.org", [], spf("fail"))).status == "none"  # §6.6.3


async def test_iprev() -> None:
    records = {
        ("2.2.0.192.in-addr.arpa", "PTR"): ["mx.example.org."],
        ("mx.example.org", "A"): ["192.0.2.2"],
        ("3.2.0.192.in-addr.arpa", "PTR"): ["liar.example.org."],
        ("liar.example.org", "A"): ["192.0.2.99"],
    }
    r = resolver(records, authentic=True)
    ok = await lookup(r, "192.0.2.2")
    assert (ok.status, ok.host, ok.authentic) == ("pass", "mx.example.org", True)
    assert (await lookup(r, "192.0.2.3")).status == "fail"
    assert (await lookup(r, "192.0.2.4")).status == "permerror"  # no PTR
    assert (await lookup(resolver({}, unreachable=True), "192.0.2.2")).status == "temperror"
    assert (await lookup(r, "::ffff:192.0.2.2")).status == "pass"
