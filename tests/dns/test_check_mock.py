"""dnscheck sections against a MockResolver: published = expected passes; each change is caught."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mox.config.load import load_config
from mox.dns.check import CannotCheck, Report, changes, render_changes, render_text, run_checks
from mox.dns.expected import Facts, build_records, gather_facts
from mox.dns.resolver import MockResolver
from mox.quickstart import QuickstartResult
from tests.dns.helpers import DOMAIN, HOST, published

OFFLINE = (
    "DNSSEC",
    "IPRev",
    "MX",
    "DANE",
    "SPF",
    "DKIM",
    "DMARC",
    "TLSRPT",
    "SRV",
    "Autoconfig",
    "CAA",
)


@pytest.fixture
def facts(installation: QuickstartResult) -> Facts:
    return gather_facts(load_config(installation.config_path), dnssec=True)


async def check(facts: Facts, res: MockResolver) -> Report:
    return await run_checks(facts, res, sections=OFFLINE)


def section(report: Report, name: str, target: str = DOMAIN) -> tuple[str, list[str]]:
    sec = next(s for s in report.sections if s.name == name and s.target == target)
    return sec.status, [f"{f.status}: {f.message}" for f in sec.findings]


async def test_published_as_expected_passes(facts: Facts) -> None:
    report = await check(facts, published(build_records(facts)))
    assert report.count("error") == 0, render_text(report)
    assert report.count("warning") == 0, render_text(report)
    assert report.exit_code == 0
    names = {s.name for s in report.sections}
    assert names == set(OFFLINE)
    assert section(report, "DANE", HOST)[0] == "pass"


async def test_sections_catch_changes(facts: Facts) -> None:
    res = published(build_records(facts))
    res.records[(DOMAIN, "TXT")] = ["v=spf1 ip4:192.0.2.1 ~all"]
    res.records[(f"2025a._domainkey.{DOMAIN}", "TXT")] = [
        res.records[(f"2025b._domainkey.{DOMAIN}", "TXT")][0]
    ]
    res.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1;p=none;rua=mailto:dmarcreports@" + DOMAIN]
    res.records[(DOMAIN, "MX")] = ["10 mx.elsewhere.test."]
    res.records[("mx.elsewhere.test", "A")] = ["192.0.2.99"]
    res.records[(f"_25._tcp.{HOST}", "TLSA")] = ["3 1 1 " + "00" * 32]
    del res.records[(f"_imaps._tcp.{DOMAIN}", "SRV")]
    res.records[(DOMAIN, "CAA")] = ['0 issue "other-ca.test"']
    report = await check(facts, res)
    status, msgs = section(report, "SPF")
    assert status == "error"
    assert "softfail" in msgs[0]
    spf = next(s for s in report.sections if s.name == "SPF" and s.target == DOMAIN)
    assert any("v=spf1 ip4:127.0.0.2 mx ~all" in line for line in spf.findings[0].fix)
    status, msgs = section(report, "DKIM")
    assert status == "error"
    assert any("2025a" in m and "not the public key" in m for m in msgs)
    assert section(report, "DMARC")[0] == "warning"
    status, msgs = section(report, "MX")
    assert status == "error"
    assert any("not to mail.example.test." in m for m in msgs)
    status, msgs = section(report, "DANE", HOST)
    assert status == "error"
    assert "none of the TLSA records" in msgs[0]
    assert section(report, "SRV")[0] == "error"
    caa_status, caa_msgs = section(report, "CAA")
    assert caa_status == "error"  # our ACME CA, letsencrypt.org, may not issue
    assert "does not allow letsencrypt.org" in caa_msgs[0]
    assert report.exit_code == 1
    # Without a known CA (certificates from files), a restricting CAA is only a warning.
    report = await check(dataclasses.replace(facts, caa_issuers=()), res)
    caa_status, caa_msgs = section(report, "CAA")
    assert caa_status == "warning"
    assert "other-ca.test" in caa_msgs[0]


async def test_unsigned_zone_warns(facts: Facts, installation: QuickstartResult) -> None:
    specs = build_records(gather_facts(load_config(installation.config_path), dnssec=False))
    report = await check(facts, published(specs, authentic=False))
    assert section(report, "DNSSEC")[0] == "warning"
    dane_status, dane_msgs = section(report, "DANE", HOST)
    assert dane_status == "warning"
    assert "not DNSSEC-signed" in dane_msgs[0]
    assert report.count("error") == 0
    assert report.exit_code == 0


async def test_unreachable_resolver(facts: Facts) -> None:
    with pytest.raises(CannotCheck, match="did not answer"):
        await check(facts, MockResolver(unreachable=True))


async def test_servfail_is_an_error_not_a_crash(facts: Facts) -> None:
    res = published(build_records(facts))
    res.fail.add((f"_dmarc.{DOMAIN}", "TXT"))
    report = await check(facts, res)
    status, msgs = section(report, "DMARC")
    assert status == "error"
    assert "failed" in msgs[0]


async def test_snapshot_round_trip_and_changes(facts: Facts) -> None:
    res = published(build_records(facts))
    before = await check(facts, res)
    snapshot = json.dumps(before.to_json())
    again = Report.loads(snapshot)
    assert changes(again, before) == []
    res.records[(f"_dmarc.{DOMAIN}", "TXT")] = ["v=DMARC1;p=none"]
    after = await check(facts, res)
    diff = changes(again, after)
    kinds = {(c.kind, c.section, c.finding.status) for c in diff}
    assert ("new", "DMARC", "warning") in kinds
    assert ("gone", "DMARC", "pass") in kinds
    text = render_changes(diff, "snap.json")
    assert "+ ? DMARC example.test" in text
    with pytest.raises(ValueError, match="snapshot"):
        Report.loads('{"format": "something else"}')
