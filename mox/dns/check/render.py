"""Text output of `mox dnscheck`: ✓ pass, ? warning, ✖ error, and the records to publish."""

from __future__ import annotations

from mox.dns.check.model import Change, Report

__all__ = ["render_changes", "render_text"]

MARK = {"pass": "✓", "warning": "?", "error": "✖"}


def render_text(report: Report, *, verbose: bool = True) -> str:
    """Every section with its findings; `verbose=False` leaves out passing sections."""
    out: list[str] = []
    for sec in report.sections:
        if not verbose and sec.status == "pass":
            continue
        out.append(f"# {sec.name} {sec.target}")
        for f in sec.findings:
            out.append(f"{MARK[f.status]} {f.status}: {f.message}")
            if f.fix:
                out.append("    publish:")
                out += [f"    {line}" for line in f.fix]
        out.append("")
    errors, warnings, passed = (report.count(s) for s in ("error", "warning", "pass"))
    out.append(f"{errors} errors, {warnings} warnings, {passed} passed")
    return "\n".join(out) + "\n"


def render_changes(changes: list[Change], since: str) -> str:
    if not changes:
        return f"no changes since {since}\n"
    out = [f"changes since {since}:"]
    for c in changes:
        sign = "+" if c.kind == "new" else "-"
        out.append(f"{sign} {MARK[c.finding.status]} {c.section} {c.target}: {c.finding.message}")
    return "\n".join(out) + "\n"
