"""Findings of `mox dnscheck`: typed sections, JSON snapshots, and the changes between two runs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Finding", "Report", "Section", "Status", "changes"]

Status = Literal["pass", "warning", "error"]
_RANK: dict[Status, int] = {"pass": 0, "warning": 1, "error": 2}
FORMAT = "mox-dnscheck-1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: what was seen, and for problems the exact records to publish."""

    status: Status
    message: str
    fix: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "fix": list(self.fix)}


@dataclass(slots=True)
class Section:
    """A named check (`SPF`, `DANE`, ...) for one target (a mail domain or the host name)."""

    name: str
    target: str
    findings: list[Finding] = field(default_factory=list)

    def ok(self, message: str) -> None:
        self.findings.append(Finding("pass", message))

    def warn(self, message: str, fix: list[str] | tuple[str, ...] = ()) -> None:
        self.findings.append(Finding("warning", message, tuple(fix)))

    def error(self, message: str, fix: list[str] | tuple[str, ...] = ()) -> None:
        self.findings.append(Finding("error", message, tuple(fix)))

    @property
    def status(self) -> Status:
        worst: Status = "pass"
        for f in self.findings:
            if _RANK[f.status] > _RANK[worst]:
                worst = f.status
        return worst

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "status": self.status,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(slots=True)
class Report:
    hostname: str
    domains: list[str]
    resolver: str
    sections: list[Section] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for s in self.sections for f in s.findings if f.status == status)

    @property
    def exit_code(self) -> int:
        """0 without errors, 1 with errors (2, "could not check", is decided before a report)."""
        return 1 if self.count("error") else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "hostname": self.hostname,
            "domains": self.domains,
            "resolver": self.resolver,
            "summary": {s: self.count(s) for s in ("error", "warning", "pass")},
            "sections": [s.to_json() for s in self.sections],
        }

    @classmethod
    def from_json(cls, data: Any) -> Report:
        """A report from `to_json()` output; ValueError when it is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a dnscheck snapshot (expected format {FORMAT!r})")
        try:
            report = cls(data["hostname"], list(data["domains"]), data.get("resolver", ""))
            for sec in data["sections"]:
                section = Section(sec["name"], sec["target"])
                for f in sec["findings"]:
                    if f["status"] not in _RANK:
                        raise ValueError(f"unknown status {f['status']!r}")
                    section.findings.append(
                        Finding(f["status"], f["message"], tuple(f.get("fix", ())))
                    )
                report.sections.append(section)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed dnscheck snapshot: {exc}") from None
        return report

    @classmethod
    def loads(cls, text: str) -> Report:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None


@dataclass(frozen=True, slots=True)
class Change:
    """A finding that appeared (`new`) or went away (`gone`) since the earlier snapshot."""

    kind: Literal["new", "gone"]
    section: str
    target: str
    finding: Finding

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.kind,
            "section": self.section,
            "target": self.target,
            **self.finding.to_json(),
        }


def changes(before: Report, after: Report) -> list[Change]:
    """Findings that differ, by section, target, status and message."""

    def keyed(report: Report) -> dict[tuple[str, str, str, str], tuple[Section, Finding]]:
        return {
            (s.name, s.target, f.status, f.message): (s, f)
            for s in report.sections
            for f in s.findings
        }

    old, new = keyed(before), keyed(after)
    out = [Change("new", s.name, s.target, f) for k, (s, f) in new.items() if k not in old]
    out += [Change("gone", s.name, s.target, f) for k, (s, f) in old.items() if k not in new]
    return out
