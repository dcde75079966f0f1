"""ARC (RFC 8617) sealing and chain validation; Authentication-Results (RFC 8601) rendering."""

from __future__ import annotations

import pytest

from mox.arc import ArcResult, seal, verify
from mox.authres import AuthResults, parse, render, strip_ours, submission
from mox.dkim.keys import DkimPrivateKey, generate_key, public_record
from mox.dkim.sign import Signer
from mox.dkim.verify import DkimResult
from mox.dmarc import DmarcResult
from mox.dns.records import Dmarc
from mox.dns.resolver import MockResolver
from mox.iprev import IprevResult
from mox.spf import SpfResult

H = ("From", "To", "Subject", "Date")
MESSAGE = (
    b"From: a@example.org\r\nTo: list@lists.example\r\nSubject: hi\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nbody\r\n"
)


@pytest.fixture(scope="module")
def keys() -> dict[str, DkimPrivateKey]:
    return {"fwd1.example": generate_key(), "fwd2.example": generate_key()}


def _resolver(keys: dict[str, DkimPrivateKey]) -> MockResolver:
    return MockResolver(
        {(f"arc._domainkey.{d}", "TXT"): [public_record(k).to_text()] for d, k in keys.items()}
    )


def _hop(message: bytes, domain: str, key: DkimPrivateKey, arc_status: str) -> bytes:
    ar = f"Authentication-Results: {domain}; spf=pass smtp.mailfrom=example.org;\r\n"
    ar += f"\tarc={arc_status}\r\n"
    with_ar = ar.encode() + message
    return seal(with_ar, [Signer(domain, "arc", key, H)], domain) + with_ar


async def test_chain_of_two_hops(keys: dict[str, DkimPrivateKey]) -> None:
    r = _resolver(keys)
    assert await verify(r, MESSAGE) == ArcResult("none")
    one = _hop(MESSAGE, "fwd1.example", keys["fwd1.example"], "none")
    assert one.startswith(b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=fwd1.example; s=arc;")
    res = await verify(r, one)
    assert (res.status, res.instances, res.domains) == ("pass", 1, ("fwd1.example",))
    two = _hop(one, "fwd2.example", keys["fwd2.example"], res.status)
    assert b"ARC-Seal: i=2; cv=pass;" in two
    res = await verify(r, two)
    assert (res.status, res.instances, res.domains) == ("pass", 2, ("fwd1.example", "fwd2.example"))


async def test_broken_chain(keys: dict[str, DkimPrivateKey]) -> None:
    one = _hop(MESSAGE, "fwd1.example", keys["fwd1.example"], "none")
    res = await verify(_resolver(keys), one.replace(b"body", b"changed body"))
    assert res.status == "fail"
    assert "did not validate" in res.reason
    gone = await verify(MockResolver({}), one)
    assert gone.status == "fail"


def test_seal_needs_rsa_and_our_results() -> None:
    ed = generate_key("ed25519")
    assert seal(MESSAGE, [Signer("fwd1.example", "e", ed, H)], "fwd1.example") == b""
    assert seal(MESSAGE, [Signer("fwd1.example", "r", generate_key(), H)], "fwd1.example") == b""


def test_render_all_methods_and_parse_back() -> None:
    results = AuthResults(
        iprev=IprevResult("pass", "192.0.2.1", "mx.example.org", authentic=True),
        spf=SpfResult("softfail", "mailfrom", "example.org", "a@example.org", "192.0.2.1", "mx"),
        dkim=(
            DkimResult(
                "pass",
                "example.org",
                "s1",
                "ed25519-sha256",
                b="abcdEFGH1234",
                key_type="ed25519",
                key_bits=256,
                authentic=True,
            ),
            DkimResult("fail", "example.net", "s2", "rsa-sha256", reason="body hash mismatch"),
        ),
        dmarc=DmarcResult(
            "pass", "example.org", "example.org", Dmarc("reject"), "reject", dkim_aligned=True
        ),
        arc=ArcResult("pass", 2, ("a.example", "b.example"), 1),
    )
    text = render("mx.example.net", results).decode()
    lines = text.split("\r\n")
    assert lines[0] == "Authentication-Results: mx.example.net;"
    assert lines[1] == "\tiprev=pass (with dnssec) policy.iprev=192.0.2.1 (mx.example.org);"
    assert lines[2] == (
        "\tdkim=pass (256 bit ed25519, with dnssec) header.d=example.org "
        "header.a=ed25519-sha256 header.s=s1 header.b=abcdEFGH1234;"
    )
    assert lines[3].startswith('\tdkim=fail (without dnssec) reason="body hash mismatch"')
    assert lines[4] == "\tspf=softfail (without dnssec) smtp.mailfrom=example.org;"
    assert lines[5] == "\tdmarc=pass (without dnssec) header.from=example.org policy.dmarc=reject;"
    assert lines[6].startswith("\tarc=pass (2 sets, without dnssec)")
    parsed = parse(text.split(":", 1)[1])
    assert parsed.authserv_id == "mx.example.net"
    assert [r.method for r in parsed.results] == ["iprev", "dkim", "dkim", "spf", "dmarc", "arc"]
    assert [r.result for r in parsed.results] == [
        "pass",
        "pass",
        "fail",
        "softfail",
        "pass",
        "pass",
    ]


def test_no_signatures_and_submission() -> None:
    text = render("mx.example.net", AuthResults(), comment="localserve").decode()
    assert text == "Authentication-Results: mx.example.net (localserve);\r\n\tdkim=none\r\n"
    assert submission("mx", "a@example.org") == (
        b"Authentication-Results: mx; auth=pass smtp.mailfrom=a@example.org\r\n"
    )


def test_forged_results_of_ours_are_removed() -> None:
    header = (
        b"Authentication-Results: MX.example.net;\r\n\tdmarc=pass header.from=bank.example\r\n"
        b"Authentication-Results: (hidden) mx.example.net; spf=pass\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Subject: hi\r\n"
    )
    assert strip_ours(header, "mx.example.net") == (
        b"Authentication-Results: other.example; spf=fail\r\nSubject: hi\r\n"
    )
