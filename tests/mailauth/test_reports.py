"""DMARC aggregate reports (RFC 7489 §7.2, Appendix C) and TLS reports (RFC 8460 §4.4)."""

from __future__ import annotations

import datetime
import gzip
import io
import json
import re
import zipfile
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import pytest

from mox.dmarcrpt import (
    ReportError,
    build_due,
    evaluation_data,
    interval_hours,
    parse_message,
    parse_xml,
)
from mox.dns.resolver import MockResolver
from mox.reportdb import ReportDB
from mox.tlsrpt import Report, parse_json
from mox.tlsrpt import parse_message as parse_tlsrpt

# A report as the large receivers send it (RFC 7489 Appendix C), with a DMARCbis namespace.
REPORT_XML = b"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>1234567890123456789</report_id>
    <date_range><begin>1764028800</begin><end>1764115199</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp>
    <pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.test</domain><selector>2025a</selector><result>pass</result></dkim>
      <spf><domain>example.test</domain><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>203.0.113.9</source_ip><count>1</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><spf><domain>spammer.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"""


def report_message(payload: bytes, ctype: str, filename: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "noreply-dmarc-support@google.com"
    msg["To"] = "dmarcreports@example.test"
    msg["Subject"] = "Report domain: example.test Submitter: google.com Report-ID: 1234"
    msg.set_content("report attached")
    maintype, subtype = ctype.split("/")
    msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def zipped(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("google.com!example.test!1764028800!1764115199.xml", data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("payload", "ctype", "name"),
    [
        (gzip.compress(REPORT_XML), "application/gzip", "r.xml.gz"),
        (zipped(REPORT_XML), "application/zip", "r.zip"),
        (REPORT_XML, "text/xml", "r.xml"),
    ],
)
def test_parse_report_message(payload: bytes, ctype: str, name: str) -> None:
    fb = parse_message(report_message(payload, ctype, name))
    assert (fb.org_name, fb.report_id, fb.domain, fb.p) == (
        "google.com",
        "1234567890123456789",
        "example.test",
        "reject",
    )
    assert (fb.begin, fb.end, fb.messages) == (1764028800, 1764115199, 4)
    assert [(r.source_ip, r.count, r.disposition) for r in fb.rows] == [
        ("192.0.2.10", 3, "none"),
        ("203.0.113.9", 1, "reject"),
    ]
    assert fb.rows[0].auth[0].selector == "2025a"


def test_bad_reports() -> None:
    with pytest.raises(ReportError, match="no report attachment"):
        parse_message(b"Subject: hi\r\n\r\nno report\r\n")
    with pytest.raises(ReportError, match="not a valid XML"):
        parse_xml(b"<feedback>")
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><feedback>&a;</feedback>'
    with pytest.raises(ReportError):
        parse_xml(bomb)  # entities are refused by defusedxml
    with pytest.raises(ReportError, match="not 'feedback'"):
        parse_xml(b"<other/>")


def test_interval_rounding() -> None:
    assert [interval_hours(s) for s in (60, 3600, 5 * 3600, 86400, 7 * 86400)] == [1, 1, 6, 24, 24]


def _evaluation(ip: str, rua: list[str]) -> dict[str, object]:
    return evaluation_data(
        policy_domain="sender.example",
        from_domain="sender.example",
        record={"p": "reject", "adkim": "r", "aspf": "r", "pct": 100, "ri": 3600, "rua": rua},
        source_ip=ip,
        disposition="reject",
        dkim_aligned=False,
        spf_aligned=False,
        overrides=[],
        envelope_from="sender.example",
        dkim=[("sender.example", "s1", "fail")],
        spf=("sender.example", "mfrom", "fail"),
    )


async def test_outgoing_reports_are_built_per_interval(tmp_path: Path) -> None:
    db = ReportDB(tmp_path / "reports.db")
    rua = ["mailto:dmarc@sender.example", "mailto:r@reports.example", "mailto:x@noauth.example"]
    t0 = 1764028800  # an hour boundary
    for offset, ip in [
        (10, "192.0.2.1"),
        (20, "192.0.2.1"),
        (30, "192.0.2.2"),
        (4000, "192.0.2.1"),
    ]:
        db.add_evaluation("sender.example", t0 + offset, _evaluation(ip, rua))
    # reports.example opts in to reports about sender.example (RFC 7489 §7.1); noauth does not.
    resolver = MockResolver(
        {("sender.example._report._dmarc.reports.example", "TXT"): ["v=DMARC1"]}
    )
    signed: list[bytes] = []

    def sign(message: bytes) -> bytes:
        signed.append(message)
        return b"DKIM-Signature: test\r\n"

    now = datetime.datetime.fromtimestamp(t0 + 3700, datetime.UTC)
    made = await build_due(db, resolver, hostname="mail.example.test", now=now, sign=sign)
    assert made == 1  # the second hour is not over
    (out,) = db.outgoing()
    assert out["recipients"] == ["dmarc@sender.example", "r@reports.example"]
    assert out["status"] == "pending"
    assert out["message"].startswith(b"DKIM-Signature: test\r\n")
    assert len(db.evaluations()) == 1
    msg = message_from_bytes(out["message"])
    subject = re.sub(r"\r?\n", "", msg["Subject"])  # unfold (RFC 5322 §2.2.3)
    assert subject == (
        "Report Domain: sender.example Submitter: mail.example.test "
        f"Report-ID: <{out['report_id']}>"
    )
    fb = parse_message(out["message"])
    assert (fb.org_name, fb.domain, fb.begin, fb.end) == (
        "mail.example.test",
        "sender.example",
        t0,
        t0 + 3599,
    )
    assert sorted((r.source_ip, r.count) for r in fb.rows) == [("192.0.2.1", 2), ("192.0.2.2", 1)]


# RFC 8460 §4.4 example report, shortened.
TLSRPT = {
    "organization-name": "Company-X",
    "date-range": {
        "start-datetime": "2016-04-01T00:00:00Z",
        "end-datetime": "2016-04-01T23:59:59Z",
    },
    "contact-info": "sts-reporting@company-x.example",
    "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
    "policies": [
        {
            "policy": {
                "policy-type": "sts",
                "policy-string": [
                    "version: STSv1",
                    "mode: testing",
                    "mx: *.mail.company-y.example",
                ],
                "policy-domain": "company-y.example",
                "mx-host": ["*.mail.company-y.example"],
            },
            "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
            "failure-details": [
                {
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "2001:db8:abcd:0012::1",
                    "receiving-mx-hostname": "mx1.mail.company-y.example",
                    "failed-session-count": 100,
                }
            ],
        }
    ],
}


def test_tlsrpt_roundtrip_and_message() -> None:
    report = parse_json(json.dumps(TLSRPT).encode())
    assert report.domains == ["company-y.example"]
    assert report.policies[0].failure_details[0].result_type == "certificate-expired"
    assert report.to_json() == TLSRPT
    assert Report.from_json(report.to_json()) == report
    msg = EmailMessage()
    msg["Subject"] = "Report Domain: company-y.example"
    msg.set_content("report")
    msg.add_attachment(
        gzip.compress(json.dumps(TLSRPT).encode()), maintype="application", subtype="tlsrpt+gzip"
    )
    assert parse_tlsrpt(msg.as_bytes()) == report


def test_report_db_keeps_one_copy(tmp_path: Path) -> None:
    db = ReportDB(tmp_path / "r.db")
    fb = parse_xml(REPORT_XML)
    args = ("now", fb.domain, fb.org_name, fb.report_id, fb.begin, fb.end, fb.to_dict())
    assert db.add_dmarc_report(*args) == 1
    assert db.add_dmarc_report(*args) is None
    (stored,) = db.dmarc_reports("example.test")
    assert stored.data["rows"][1]["source_ip"] == "203.0.113.9"
    assert db.dmarc_reports("other.example") == []
