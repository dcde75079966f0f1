"""Every DNS record parser (mox/dns/records.py): random text raises only RecordError, and a parsed
record's to_text() parses back to the same record."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.dns import records
from mox.dns.records import RecordError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS: list[Any] = [
    records.Spf,
    records.DkimKey,
    records.Dmarc,
    records.MtaStsRecord,
    records.MtaStsPolicy,
    records.TlsRpt,
    records.Tlsa,
    records.Srv,
    records.Mx,
    records.Caa,
]

# Fragments of real records, so random combinations reach deep into the parsers.
FRAGMENTS = [
    "v=spf1",
    "v=DKIM1",
    "v=DMARC1",
    "v=STSv1",
    "v=TLSRPTv1",
    "version: STSv1\n",
    "mode: enforce\n",
    "mode: testing\n",
    "mx: mail.example.com\n",
    "mx: *.example.net\n",
    "max_age: 86400\n",
    "ip4:192.0.2.0/24",
    "ip6:2001:db8::/32",
    "a",
    "mx",
    "-all",
    "~all",
    "include:_spf.example.com",
    "redirect=example.org",
    "exp=x.example",
    "ptr",
    "exists:%{i}.x",
    "k=rsa",
    "k=ed25519",
    "p=MIIBIjANBg",
    "h=sha256",
    "t=s",
    "s=email",
    "p=reject",
    "sp=none",
    "pct=50",
    "rua=mailto:d@example.com",
    "ruf=mailto:f@example.com!10m",
    "adkim=s",
    "aspf=r",
    "fo=1",
    "id=20240101",
    "rua=https://r.example/x",
    "3 1 1 ",
    "2 0 1 ",
    "0 5 443 mail.",
    "10 mail.example.com.",
    '0 issue "letsencrypt.org"',
    '128 iodef "mailto:x@y"',
    ";",
    " ",
    "=",
    ":",
    "/",
    '"',
    "\\",
    "\n",
    "\r\n",
    "0",
    "65536",
    "-1",
    "abcdef0123",
]
record_text = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=12).map(
    lambda parts: "".join(p if i % 2 else p + " " for i, p in enumerate(parts))
)


@pytest.mark.parametrize("cls", PARSERS, ids=lambda c: c.__name__)
@FUZZ
@given(text=record_text)
def test_parse_raises_only_record_error_and_round_trips(cls: Any, text: str) -> None:
    try:
        record = cls.parse(text)
    except RecordError:
        return
    again = cls.parse(record.to_text())
    assert again == record
