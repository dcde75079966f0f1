"""Every published format: RFC examples parse, mox's texts round-trip, and bad input is refused."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.dns.records import (
    Caa,
    DkimKey,
    Dmarc,
    MtaStsPolicy,
    MtaStsRecord,
    Mx,
    RecordError,
    Spf,
    SpfDirective,
    Srv,
    Tlsa,
    TlsRpt,
)
from mox.dns.zone import quote_txt, txt_strings


@pytest.mark.parametrize(
    "text",
    [
        "v=spf1 ip4:198.51.100.10 ip6:2001:db8::10 mx ~all",  # mox, reference §3
        "v=spf1 a -all",
        "v=spf1 mx a:colo.example.com/28 -all",  # RFC 7208 §A.1 (without the "+")
        "v=spf1 mx/30 mx:example.org/30 -all",  # RFC 7208 §A.1
        "v=spf1 ip4:192.0.2.128/28 -all",
        "v=spf1 include:example.com include:example.net -all",
        "v=spf1 redirect=_spf.example.com",
        "v=spf1 a//64 ?all",
        "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",  # RFC 7208 §7.4
    ],
)
def test_spf_round_trip(text: str) -> None:
    assert Spf.parse(text).to_text() == text


def test_spf_structure() -> None:
    spf = Spf.parse("v=spf1 a:colo.example.com/28//64 -all exp=explain._spf.%{d}")
    assert spf.directives[0] == SpfDirective("a", "+", "colo.example.com", 28, 64)
    assert spf.directives[1] == SpfDirective("all", "-")
    assert spf.explanation == "explain._spf.%{d}"
    assert Spf.parse("v=spf1 +mx").to_text() == "v=spf1 mx"  # "+" is the default qualifier


@pytest.mark.parametrize(
    "text",
    [
        "v=spf2 -all",
        "v=spf1 foo:bar -all",  # RFC 7208 §4.6.1: unknown mechanism is permerror
        "v=spf1 ip4:2001:db8::1",
        "v=spf1 ip4:192.0.2.1/33",
        "v=spf1 redirect=a redirect=b",  # RFC 7208 §6
        "v=spf1 include",
    ],
)
def test_spf_refused(text: str) -> None:
    with pytest.raises(RecordError):
        Spf.parse(text)


def test_dkim_rfc6376_example_and_mox_format() -> None:
    # RFC 6376 §A.3 style record, with whitespace inside p= (FWS is allowed, §3.2).
    key = base64.b64encode(b"\x01" * 40).decode()
    rec = DkimKey.parse(f"v=DKIM1; p={key[:20]}\r\n {key[20:]}")
    assert rec.public_key == b"\x01" * 40
    assert rec.key_type == "rsa"
    mox_text = f"v=DKIM1;h=sha256;p={key}"
    assert DkimKey.parse(mox_text).to_text() == mox_text
    ed = "v=DKIM1;h=sha256;k=ed25519;p=" + base64.b64encode(b"\x02" * 32).decode()
    parsed = DkimKey.parse(ed)
    assert parsed.key_type == "ed25519"
    assert parsed.to_text() == ed
    assert DkimKey.parse("v=DKIM1; p=").public_key == b""  # revoked


@pytest.mark.parametrize(
    "text", ["k=rsa; v=DKIM1; p=AAAA", "v=DKIM2; p=AAAA", "v=DKIM1; k=rsa", "v=DKIM1; p=!!"]
)
def test_dkim_refused(text: str) -> None:
    with pytest.raises(RecordError):
        DkimKey.parse(text)


def test_dmarc() -> None:
    text = "v=DMARC1;p=reject;rua=mailto:dmarcreports@example.com!10m"  # mox, reference §3
    rec = Dmarc.parse(text)
    assert rec.policy == "reject"
    assert rec.rua_addresses() == ["dmarcreports@example.com"]
    assert rec.to_text() == text
    # RFC 7489 §B.2.1 example
    rfc = Dmarc.parse("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com")
    assert rfc.policy == "none"
    assert Dmarc.parse("v=DMARC1; p=quarantine; sp=none; pct=50").subdomain_policy == "none"
    for bad in ("p=reject; v=DMARC1", "v=DMARC1; p=maybe", "v=DMARC1; p=none; pct=101"):
        with pytest.raises(RecordError):
            Dmarc.parse(bad)


def test_mta_sts() -> None:
    rec = MtaStsRecord.parse("v=STSv1; id=20160831085700Z;")  # RFC 8461 §3.1
    assert rec.id == "20160831085700Z"
    assert MtaStsRecord.parse("v=STSv1; id=20250819T203950").to_text() == (
        "v=STSv1; id=20250819T203950"
    )
    with pytest.raises(RecordError):
        MtaStsRecord.parse("v=STSv1; id=has-dash")
    policy_text = (  # RFC 8461 §3.2 example
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
        "mx: backupmx.example.com\r\nmax_age: 604800\r\n"
    )
    policy = MtaStsPolicy.parse(policy_text)
    assert policy.to_text() == policy_text
    assert policy.matches("mail.example.com.")
    assert policy.matches("mx1.example.net")
    assert not policy.matches("a.b.example.net")  # RFC 8461 §4.1: one label only
    assert not policy.matches("example.net")
    for bad in ("version: STSv1\nmode: enforce\nmax_age: 1\n", "version: STSv2\nmode: none\n"):
        with pytest.raises(RecordError):
            MtaStsPolicy.parse(bad)


def test_tlsrpt() -> None:
    text = "v=TLSRPTv1; rua=mailto:tlsreports@example.com"  # mox, reference §3
    rec = TlsRpt.parse(text)
    assert rec.to_text() == text
    assert rec.rua_addresses() == ["tlsreports@example.com"]
    # RFC 8460 §3 example with two URIs
    two = TlsRpt.parse("v=TLSRPTv1;rua=mailto:reports@example.com,https://reporting.example.com/v1")
    assert len(two.rua) == 2
    for bad in ("v=TLSRPTv1;", "v=TLSRPTv2; rua=mailto:a@b", "v=TLSRPTv1; rua=ftp://x"):
        with pytest.raises(RecordError):
            TlsRpt.parse(bad)


def test_rdata_formats() -> None:
    tlsa = Tlsa.parse("3 1 1 ABCDEF0123")
    assert tlsa.data == bytes.fromhex("abcdef0123")
    assert tlsa.to_text() == "3 1 1 abcdef0123"
    assert Srv.parse("0 1 993 mail.example.com.").to_text() == "0 1 993 mail.example.com."
    assert Srv.parse("0 0 0 .").unavailable
    assert Mx.parse("10 mail.example.com").host == "mail.example.com."
    assert Mx.parse("0 .").is_null  # RFC 7505
    caa = Caa.parse('0 issue "letsencrypt.org; accounturi=https://acme/acct/1"')
    assert caa.issuer == "letsencrypt.org"
    assert caa.parameters == (("accounturi", "https://acme/acct/1"),)
    assert Caa.parse('0 issue ";"').issuer == ""
    assert Caa.parse(caa.to_text()) == caa
    for cls, bad in ((Tlsa, "3 1"), (Srv, "0 1 x y"), (Mx, "ten mail."), (Caa, "x issue y")):
        with pytest.raises(RecordError):
            cls.parse(bad)


@given(st.lists(st.sampled_from(["a", "mx", "-all", "~all", "ip4:192.0.2.1", "ip6:2001:db8::1"])))
def test_spf_generated(terms: list[str]) -> None:
    text = " ".join(["v=spf1", *terms])
    assert Spf.parse(Spf.parse(text).to_text()) == Spf.parse(text)


@given(st.text(min_size=0, max_size=600))
def test_txt_split_and_quote(text: str) -> None:
    parts = txt_strings(text)
    assert all(len(p.encode()) <= 255 for p in parts)
    assert "".join(parts) == text
    quoted = quote_txt(text)
    assert quoted.startswith('"')
    assert quoted.endswith('"')
    assert all(0x20 <= ord(c) < 0x7F for c in quoted)
