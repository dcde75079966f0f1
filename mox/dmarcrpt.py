"""DMARC aggregate reports, RFC 7489 §7.2 and Appendix C: parse and store, build our own.

Incoming: a report message has the XML as an attachment, gzip- or zip-compressed or plain
(§7.2.1.1); `parse_message` finds it (decompressed size capped, against bombs) and `parse_xml`
reads it with defusedxml into a `Feedback`. Outgoing: each DMARC evaluation of a message whose
sender's record asks for reports (`rua`) is stored; `build_due` turns the evaluations of a
finished interval into one report per policy domain: XML, gzipped, attached to a message from
postmaster@<hostname> and DKIM-signed. They are kept in the report database ("pending") until
`mox serve` hands them to the outgoing queue ("queued").

As mox: intervals are `ri` rounded up to 1, 2, 3, 4, 6, 8, 12 or 24 hours; report addresses
outside the policy domain's organization must opt in with a `<policy-domain>._report._dmarc.
<their domain>` TXT record (§7.1).
"""

from __future__ import annotations

import datetime
import gzip
import io
import re
import secrets
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from defusedxml import ElementTree as SafeET

from mox.dmarc import org_domain
from mox.dns.resolver import DnsError, Resolver
from mox.reportdb import ReportDB

PENDING = "pending"  # built, not yet handed to the outgoing queue

__all__ = [
    "AuthResult",
    "Feedback",
    "ReportError",
    "Row",
    "build_due",
    "evaluation_data",
    "interval_hours",
    "parse_message",
    "parse_xml",
    "to_xml",
]

MAX_XML = 20 * 1024 * 1024  # decompressed report size we accept
INTERVALS = (1, 2, 3, 4, 6, 8, 12, 24)  # hours, as mox
REPORT_TYPES = {
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-zip-compressed",
    "application/xml",
    "text/xml",
    "application/octet-stream",
}


class ReportError(ValueError):
    """A message that is not a readable DMARC aggregate report; the text says why."""


@dataclass(frozen=True, slots=True)
class AuthResult:
    method: str  # dkim or spf
    domain: str
    result: str
    selector: str = ""  # dkim
    scope: str = ""  # spf: mfrom or helo


@dataclass(frozen=True, slots=True)
class Row:
    source_ip: str
    count: int
    disposition: str
    dkim: str  # policy_evaluated: aligned DKIM pass or fail
    spf: str
    header_from: str
    envelope_from: str = ""
    reasons: tuple[str, ...] = ()
    auth: tuple[AuthResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Feedback:
    """An aggregate report (RFC 7489 Appendix C `feedback`)."""

    org_name: str
    email: str
    report_id: str
    begin: int
    end: int
    domain: str  # policy_published
    p: str
    sp: str = ""
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rows: tuple[Row, ...] = field(default=())
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def messages(self) -> int:
        return sum(r.count for r in self.rows)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop an XML namespace (DMARCbis adds one)


def _child(el: Any, name: str) -> Any:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _text(el: Any, *path: str, default: str = "") -> str:
    for name in path:
        if el is None:
            return default
        el = _child(el, name)
    if el is None or el.text is None:
        return default
    return str(el.text).strip()


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ReportError(f"{what}: not a number: {value!r}") from None


def parse_xml(data: bytes) -> Feedback:
    """Parse report XML (RFC 7489 Appendix C); entity tricks are refused by defusedxml."""
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # defusedxml raises ParseError and its own DefusedXmlException
        raise ReportError(f"not a valid XML document: {exc}") from None
    if _local(root.tag) != "feedback":
        raise ReportError(f"root element is {_local(root.tag)!r}, not 'feedback'")
    meta = _child(root, "report_metadata")
    pub = _child(root, "policy_published")
    if meta is None or pub is None:
        raise ReportError("missing report_metadata or policy_published")
    rows = []
    for rec in _children(root, "record"):
        row = _child(rec, "row")
        auth: list[AuthResult] = []
        results = _child(rec, "auth_results")
        for d in _children(results, "dkim"):
            auth.append(
                AuthResult(
                    "dkim",
                    _text(d, "domain").lower(),
                    _text(d, "result"),
                    selector=_text(d, "selector"),
                )
            )
        for s in _children(results, "spf"):
            auth.append(
                AuthResult(
                    "spf", _text(s, "domain").lower(), _text(s, "result"), scope=_text(s, "scope")
                )
            )
        evaluated = _child(row, "policy_evaluated") if row is not None else None
        rows.append(
            Row(
                source_ip=_text(row, "source_ip"),
                count=_int(_text(row, "count", default="0"), "count"),
                disposition=_text(evaluated, "disposition"),
                dkim=_text(evaluated, "dkim"),
                spf=_text(evaluated, "spf"),
                header_from=_text(rec, "identifiers", "header_from").lower(),
                envelope_from=_text(rec, "identifiers", "envelope_from").lower(),
                reasons=tuple(_text(r, "type") for r in _children(evaluated, "reason")),
                auth=tuple(auth),
            )
        )
    domain = _text(pub, "domain").lower()
    if not domain:
        raise ReportError("policy_published has no domain")
    return Feedback(
        org_name=_text(meta, "org_name"),
        email=_text(meta, "email"),
        report_id=_text(meta, "report_id"),
        begin=_int(_text(meta, "date_range", "begin", default="0"), "begin"),
        end=_int(_text(meta, "date_range", "end", default="0"), "end"),
        domain=domain,
        p=_text(pub, "p"),
        sp=_text(pub, "sp"),
        adkim=_text(pub, "adkim", default="r") or "r",
        aspf=_text(pub, "aspf", default="r") or "r",
        pct=_int(_text(pub, "pct", default="100") or "100", "pct"),
        rows=tuple(rows),
        errors=tuple(e.text or "" for e in _children(meta, "error")),
    )


def _gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out = f.read(MAX_XML + 1)
    if len(out) > MAX_XML:
        raise ReportError("decompressed report too large")
    return out


def _unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise ReportError(f"zip file with {len(names)} files, expected one")
        with z.open(names[0]) as f:
            out = f.read(MAX_XML + 1)
    if len(out) > MAX_XML:
        raise ReportError("decompressed report too large")
    return out


def _decode(payload: bytes, ctype: str, filename: str) -> bytes:
    if payload[:2] == b"\x1f\x8b":  # gzip magic, RFC 1952 §2.3.1
        return _gunzip(payload)
    if payload[:4] == b"PK\x03\x04":  # zip local file header
        return _unzip(payload)
    if ctype in ("application/xml", "text/xml") or filename.endswith(".xml"):
        return payload
    raise ReportError(f"attachment of type {ctype} is neither gzip, zip nor XML")


def parse_message(message: bytes) -> Feedback:
    """The report in a DMARC aggregate report message (RFC 7489 §7.2.1.1)."""
    msg = message_from_bytes(message, policy=policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if ctype not in REPORT_TYPES and not re.search(r"\.(xml|xml\.gz|gz|zip)$", filename):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        return parse_xml(_decode(payload, ctype, filename))
    raise ReportError("no report attachment (gzip, zip or XML) found")


# --- outgoing ---


def interval_hours(ri: int) -> int:
    """The reporting interval in hours for a record's ri= seconds (as mox: 1..24)."""
    hours = max(1, -(-ri // 3600))
    return next((h for h in INTERVALS if h >= hours), 24)


def evaluation_data(
    *,
    policy_domain: str,
    from_domain: str,
    record: Mapping[str, Any],
    source_ip: str,
    disposition: str,
    dkim_aligned: bool,
    spf_aligned: bool,
    overrides: Sequence[str],
    envelope_from: str,
    dkim: Sequence[tuple[str, str, str]],
    spf: tuple[str, str, str] | None,
) -> dict[str, Any]:
    """What an evaluation keeps for a later report row (RFC 7489 Appendix C `record`)."""
    return {
        "policy_domain": policy_domain,
        "header_from": from_domain,
        "record": dict(record),
        "source_ip": source_ip,
        "disposition": disposition,
        "dkim": "pass" if dkim_aligned else "fail",
        "spf": "pass" if spf_aligned else "fail",
        "overrides": list(overrides),
        "envelope_from": envelope_from,
        "dkim_results": [list(d) for d in dkim],
        "spf_result": list(spf) if spf else None,
    }


def to_xml(
    *,
    org_name: str,
    email: str,
    report_id: str,
    begin: int,
    end: int,
    record: Mapping[str, Any],
    domain: str,
    rows: Sequence[tuple[Mapping[str, Any], int]],
) -> bytes:
    """An aggregate report document (RFC 7489 Appendix C)."""
    root = Element("feedback")
    SubElement(root, "version").text = "1.0"
    meta = SubElement(root, "report_metadata")
    SubElement(meta, "org_name").text = org_name
    SubElement(meta, "email").text = email
    SubElement(meta, "report_id").text = report_id
    dr = SubElement(meta, "date_range")
    SubElement(dr, "begin").text = str(begin)
    SubElement(dr, "end").text = str(end)
    pub = SubElement(root, "policy_published")
    SubElement(pub, "domain").text = domain
    SubElement(pub, "adkim").text = record.get("adkim", "r")
    SubElement(pub, "aspf").text = record.get("aspf", "r")
    SubElement(pub, "p").text = record.get("p", "none")
    SubElement(pub, "sp").text = record.get("sp") or record.get("p", "none")
    SubElement(pub, "pct").text = str(record.get("pct", 100))
    for ev, count in rows:
        rec = SubElement(root, "record")
        row = SubElement(rec, "row")
        SubElement(row, "source_ip").text = ev["source_ip"]
        SubElement(row, "count").text = str(count)
        pe = SubElement(row, "policy_evaluated")
        SubElement(pe, "disposition").text = ev["disposition"]
        SubElement(pe, "dkim").text = ev["dkim"]
        SubElement(pe, "spf").text = ev["spf"]
        for reason in ev["overrides"]:
            SubElement(SubElement(pe, "reason"), "type").text = reason
        ids = SubElement(rec, "identifiers")
        if ev.get("envelope_from"):
            SubElement(ids, "envelope_from").text = ev["envelope_from"]
        SubElement(ids, "header_from").text = ev["header_from"]
        auth = SubElement(rec, "auth_results")
        for d_domain, selector, result in ev["dkim_results"]:
            d = SubElement(auth, "dkim")
            SubElement(d, "domain").text = d_domain
            if selector:
                SubElement(d, "selector").text = selector
            SubElement(d, "result").text = result
        spf = ev["spf_result"] or [ev["envelope_from"] or ev["header_from"], "mfrom", "none"]
        s = SubElement(auth, "spf")
        SubElement(s, "domain").text = spf[0]
        SubElement(s, "scope").text = spf[1]
        SubElement(s, "result").text = spf[2]
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body


async def _destinations(resolver: Resolver, policy_domain: str, rua: Sequence[str]) -> list[str]:
    """The rua mailto addresses that may receive reports for policy_domain (RFC 7489 §7.1)."""
    out = []
    for uri in rua:
        if not uri.lower().startswith("mailto:"):
            continue
        addr = uri[7:].split("!", 1)[0].strip()
        dest = addr.rpartition("@")[2].lower()
        if not dest:
            continue
        if org_domain(dest) != org_domain(policy_domain):
            try:
                answer = await resolver.query(f"{policy_domain}._report._dmarc.{dest}", "TXT")
            except DnsError:
                continue  # no opt-in: the destination did not agree to receive them
            if not any(re.match(r"v\s*=\s*DMARC1\s*(;|$)", t) for t in answer.records):
                continue
        out.append(addr)
    return out


async def build_due(
    db: ReportDB,
    resolver: Resolver,
    *,
    hostname: str,
    now: datetime.datetime,
    sign: Callable[[bytes], bytes],
) -> int:
    """Build reports for every finished interval; returns how many were stored."""
    groups: dict[tuple[str, int, int], list[tuple[int, dict[str, Any]]]] = {}
    for eid, domain, evaluated, data in db.evaluations():
        hours = interval_hours(int(data["record"].get("ri", 86400)))
        begin = evaluated - evaluated % (hours * 3600)  # intervals start at UTC hour boundaries
        end = begin + hours * 3600
        groups.setdefault((domain, begin, end), []).append((eid, data))
    made = 0
    for (domain, begin, end), items in sorted(groups.items()):
        if end > now.timestamp():
            continue  # the interval is not over yet
        record = items[-1][1]["record"]
        ids = [eid for eid, _ in items]
        recipients = await _destinations(resolver, domain, record.get("rua", []))
        report_id = f"{begin}.{secrets.token_hex(6)}"
        if not recipients:
            db.add_outgoing(
                now.isoformat(), domain, report_id, begin, end, [], b"", "no destination", ids
            )
            continue
        counted = Counter(_row_key(data) for _, data in items)
        firsts = {_row_key(data): data for _, data in items}
        xml = to_xml(
            org_name=hostname,
            email=f"postmaster@{hostname}",
            report_id=report_id,
            begin=begin,
            end=end - 1,
            record=record,
            domain=domain,
            rows=[(firsts[k], n) for k, n in counted.items()],
        )
        message = _message(hostname, domain, report_id, begin, end, recipients, xml, now)
        signed = sign(message) + message
        db.add_outgoing(
            now.isoformat(),
            domain,
            report_id,
            begin,
            end,
            recipients,
            signed,
            PENDING,
            ids,
        )
        made += 1
    return made


def _row_key(data: Mapping[str, Any]) -> str:
    keys = ("source_ip", "disposition", "dkim", "spf", "header_from", "envelope_from")
    parts = [str(data[k]) for k in keys]
    parts += [repr(data["overrides"]), repr(data["dkim_results"]), repr(data["spf_result"])]
    return "\x00".join(parts)


def _message(
    hostname: str,
    domain: str,
    report_id: str,
    begin: int,
    end: int,
    recipients: Sequence[str],
    xml: bytes,
    now: datetime.datetime,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = f"postmaster@{hostname}"
    msg["To"] = ", ".join(recipients)
    # RFC 7489 §7.2.1.1: the Subject names the report domain, submitter and report id
    msg["Subject"] = f"Report Domain: {domain} Submitter: {hostname} Report-ID: <{report_id}>"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=hostname)
    msg["MIME-Version"] = "1.0"
    msg.set_content(
        f"This is a DMARC aggregate report for {domain} from {hostname}, "
        f"for {datetime.datetime.fromtimestamp(begin, datetime.UTC):%Y-%m-%d %H:%M} to "
        f"{datetime.datetime.fromtimestamp(end, datetime.UTC):%Y-%m-%d %H:%M} UTC.\n"
    )
    name = f"{hostname}!{domain}!{begin}!{end - 1}!{report_id}.xml.gz"  # RFC 7489 §7.2.1.1
    msg.add_attachment(
        gzip.compress(xml, mtime=0), maintype="application", subtype="gzip", filename=name
    )
    return msg.as_bytes()
