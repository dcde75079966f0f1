"""SMTP TLS Reporting, RFC 8460: the report format, and incoming reports parsed and stored.

The report types are frozen dataclasses with `from_json` and `to_json` (RFC 8460 §4.4): the
outgoing queue builds our own reports with them. An incoming report message carries the JSON,
gzipped (`application/tlsrpt+gzip`) or not (`application/tlsrpt+json`, §5.3); `parse_message`
finds and reads it, with the decompressed size capped.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

__all__ = [
    "FailureDetails",
    "PolicyResult",
    "Report",
    "ReportError",
    "parse_json",
    "parse_message",
]

MAX_JSON = 20 * 1024 * 1024
CONTENT_TYPES = {"application/tlsrpt+gzip", "application/tlsrpt+json"}  # RFC 8460 §6.4, §6.5
RESULT_TYPES = {  # RFC 8460 §4.3
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
}


class ReportError(ValueError):
    """Not a readable TLS report; the text says why."""


def _str(obj: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ReportError(f"{key}: expected a string")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReportError(f"{key}: expected a non-negative number")
    return value


@dataclass(frozen=True, slots=True)
class FailureDetails:
    """RFC 8460 §4.4 failure-details."""

    result_type: str
    failed_session_count: int
    sending_mta_ip: str = ""
    receiving_mx_hostname: str = ""
    receiving_mx_helo: str = ""
    receiving_ip: str = ""
    additional_information: str = ""
    failure_reason_code: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "result-type": self.result_type,
            "failed-session-count": self.failed_session_count,
        }
        for key in (
            "sending_mta_ip",
            "receiving_mx_hostname",
            "receiving_mx_helo",
            "receiving_ip",
            "additional_information",
            "failure_reason_code",
        ):
            value = getattr(self, key)
            if value:
                out[key.replace("_", "-")] = value
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FailureDetails:
        return cls(
            result_type=_str(obj, "result-type"),  # unknown types are kept (RFC 8460 §4.3)
            failed_session_count=_int(obj, "failed-session-count"),
            sending_mta_ip=_str(obj, "sending-mta-ip", required=False),
            receiving_mx_hostname=_str(obj, "receiving-mx-hostname", required=False),
            receiving_mx_helo=_str(obj, "receiving-mx-helo", required=False),
            receiving_ip=_str(obj, "receiving-ip", required=False),
            additional_information=_str(obj, "additional-information", required=False),
            failure_reason_code=_str(obj, "failure-reason-code", required=False),
        )


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One `policies` entry: the policy applied and the session counts (RFC 8460 §4.4)."""

    policy_type: str  # sts, tlsa or no-policy-found
    policy_domain: str
    successful: int
    failed: int
    policy_string: tuple[str, ...] = ()
    mx_host: tuple[str, ...] = ()
    failure_details: tuple[FailureDetails, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        pol: dict[str, Any] = {"policy-type": self.policy_type, "policy-domain": self.policy_domain}
        if self.policy_string:
            pol["policy-string"] = list(self.policy_string)
        if self.mx_host:
            pol["mx-host"] = list(self.mx_host)
        out: dict[str, Any] = {
            "policy": pol,
            "summary": {
                "total-successful-session-count": self.successful,
                "total-failure-session-count": self.failed,
            },
        }
        if self.failure_details:
            out["failure-details"] = [f.to_json() for f in self.failure_details]
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PolicyResult:
        pol = obj.get("policy")
        summary = obj.get("summary")
        if not isinstance(pol, dict) or not isinstance(summary, dict):
            raise ReportError("policies[]: needs policy and summary")
        kind = _str(pol, "policy-type")
        if kind not in ("sts", "tlsa", "no-policy-found"):
            raise ReportError(f"policy-type {kind!r} is not sts, tlsa or no-policy-found")
        details = obj.get("failure-details", [])
        if not isinstance(details, list):
            raise ReportError("failure-details: expected a list")
        strings = pol.get("policy-string", [])
        mx = pol.get("mx-host", [])
        if not isinstance(strings, list) or not isinstance(mx, list):
            raise ReportError("policy-string and mx-host must be lists")
        return cls(
            policy_type=kind,
            policy_domain=_str(pol, "policy-domain").lower(),
            successful=_int(summary, "total-successful-session-count"),
            failed=_int(summary, "total-failure-session-count"),
            policy_string=tuple(str(s) for s in strings),
            mx_host=tuple(str(m) for m in mx),
            failure_details=tuple(FailureDetails.from_json(d) for d in details),
        )


@dataclass(frozen=True, slots=True)
class Report:
    """A TLS report (RFC 8460 §4.4)."""

    organization_name: str
    start: str  # RFC 3339 date-time
    end: str
    contact_info: str
    report_id: str
    policies: tuple[PolicyResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "organization-name": self.organization_name,
            "date-range": {"start-datetime": self.start, "end-datetime": self.end},
            "contact-info": self.contact_info,
            "report-id": self.report_id,
            "policies": [p.to_json() for p in self.policies],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Report:
        dates = obj.get("date-range")
        policies = obj.get("policies")
        if not isinstance(dates, dict) or not isinstance(policies, list):
            raise ReportError("needs date-range and policies")
        return cls(
            organization_name=_str(obj, "organization-name"),
            start=_str(dates, "start-datetime"),
            end=_str(dates, "end-datetime"),
            contact_info=_str(obj, "contact-info", required=False),
            report_id=_str(obj, "report-id"),
            policies=tuple(PolicyResult.from_json(p) for p in policies),
        )

    @property
    def domains(self) -> list[str]:
        return sorted({p.policy_domain for p in self.policies})


def parse_json(data: bytes) -> Report:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ReportError("not a JSON object")
    return Report.from_json(obj)


def parse_message(message: bytes) -> Report:
    """The report in a TLS report message (RFC 8460 §5.3)."""
    msg = message_from_bytes(message, policy=policy.compat32)
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype not in CONTENT_TYPES:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if ctype.endswith("+gzip") or payload[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(payload)) as f:
                payload = f.read(MAX_JSON + 1)
            if len(payload) > MAX_JSON:
                raise ReportError("decompressed report too large")
        return parse_json(payload)
    raise ReportError("no application/tlsrpt+gzip or +json part found")
