"""The Authentication-Results header field, RFC 8601, rendered with the `authres` package.

One result per method, each on its own line, as mox writes it: iprev (§2.7.3), dkim per signature
(§2.7.1, with `header.b` from RFC 6008), spf (§2.7.2), dmarc (RFC 7489 §11.2) and arc (RFC 8617
§10.2). Each carries the comment "with dnssec" or "without dnssec": whether the DNS answers it
rests on were DNSSEC-validated by a trusted resolver.

RFC 8601 §5: fields that claim our authserv-id but reach us from outside are removed
(`strip_ours`), so nobody can forge our verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import authres
import authres.arc
import authres.dmarc

if TYPE_CHECKING:
    from mox.arc import ArcResult
    from mox.dkim.verify import DkimResult
    from mox.dmarc import DmarcResult
    from mox.iprev import IprevResult
    from mox.spf import SpfResult

__all__ = ["FEATURES", "AuthResults", "fold", "parse", "render", "strip_ours", "submission"]

FEATURES = authres.FeatureContext(authres.dmarc, authres.arc)


def fold(name: str, items: Sequence[str]) -> bytes:
    """`Name: item item...`, folded between items to keep lines under 78 (RFC 5322 §2.2.3)."""
    line = f"{name}:"
    lines: list[str] = []
    for text in items:
        if len(line) + 1 + len(text) > 78 and line != f"{name}:":
            lines.append(line)
            line = "\t" + text
        else:
            line += " " + text
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _comment(text: str) -> str:
    """Text safe inside an RFC 5322 comment: printable ASCII, parentheses escaped."""
    return re.sub(r"([()\\])", r"\\\1", re.sub(r"[^\x20-\x7e]", "?", text))


def _dnssec(authentic: bool) -> str:
    return "with dnssec" if authentic else "without dnssec"


@dataclass(frozen=True, slots=True)
class AuthResults:
    """Everything checked for one incoming message."""

    iprev: IprevResult | None = None
    spf: SpfResult | None = None
    dkim: Sequence[DkimResult] = field(default=())
    dmarc: DmarcResult | None = None
    arc: ArcResult | None = None


def _results(r: AuthResults) -> list[object]:
    out: list[object] = []
    if r.iprev is not None:
        ip = r.iprev
        iprev = authres.IPRevAuthenticationResult(
            result=ip.status, result_comment=_dnssec(ip.authentic), policy_iprev=ip.ip
        )
        if ip.host:
            iprev.policy_iprev_comment = _comment(ip.host)
        out.append(iprev)
    if not r.dkim:
        out.append(authres.DKIMAuthenticationResult(result="none"))
    for d in r.dkim:
        what = f"{d.key_bits} bit {d.key_type}, " if d.key_bits else ""
        res = authres.DKIMAuthenticationResult(
            result=d.status,
            result_comment=_comment(what + _dnssec(d.authentic)),
            reason=d.reason[:100] or None,
            header_d=d.domain or None,
            header_s=d.selector or None,
            header_a=d.algorithm or None,
        )
        if d.b:
            res.properties.append(authres.AuthenticationResultProperty("header", "b", d.b))
        out.append(res)
    if r.spf is not None:
        s = r.spf
        spf = authres.SPFAuthenticationResult(
            result=s.status,
            result_comment=_dnssec(s.authentic),
            reason=s.problem[:100] or None,
        )
        if s.identity == "mailfrom":
            spf.smtp_mailfrom = s.domain
        elif s.helo:
            spf.smtp_helo = s.helo
        out.append(spf)
    if r.dmarc is not None:
        m = r.dmarc
        comment = _dnssec(m.authentic)
        if m.overrides:
            comment += ", override " + " ".join(m.overrides)
        dmarc = authres.dmarc.DMARCAuthenticationResult(
            result=m.status, result_comment=_comment(comment), reason=m.reason[:100] or None
        )
        if m.from_domain:
            dmarc.header_from = m.from_domain
        if m.record is not None:
            dmarc.policy = m.policy  # RFC 7489 §11.2 policy.dmarc
        out.append(dmarc)
    if r.arc is not None:
        a = r.arc
        comment = f"{a.instances} sets, {_dnssec(a.authentic)}" if a.instances else ""
        arc = authres.arc.ARCAuthenticationResult(
            result=a.status, result_comment=comment or None, reason=a.reason[:100] or None
        )
        if a.oldest_pass:
            arc.header_oldest_pass = str(a.oldest_pass)
        out.append(arc)
    return out


def render(authserv_id: str, results: AuthResults, *, comment: str = "") -> bytes:
    """The Authentication-Results header, one method result per line, CRLF-terminated."""
    head = authserv_id + (f" ({_comment(comment)})" if comment else "")
    items = [str(x) for x in _results(results)] or ["none"]
    text = f"Authentication-Results: {head};\r\n\t" + ";\r\n\t".join(items) + "\r\n"
    return text.encode("utf-8")


def submission(authserv_id: str, mail_from: str) -> bytes:
    """For a message submitted after AUTH (RFC 8601 §2.7.4), as mox writes it."""
    res = authres.SMTPAUTHAuthenticationResult(result="pass", smtp_mailfrom=mail_from or "<>")
    return f"Authentication-Results: {authserv_id}; {res}\r\n".encode()


def parse(value: str) -> authres.AuthenticationResultsHeader:
    """Parse a header value (unfolded or folded), e.g. to read a previous hop's results."""
    return FEATURES.parse_value(re.sub(r"\r?\n[ \t]", " ", value))


def _authserv_id(value: bytes) -> str:
    text = re.sub(rb"\r?\n[ \t]+", b" ", value).decode("utf-8", "replace")
    text = re.sub(r"\([^()]*\)", " ", text)  # comments (one level is all a forger needs)
    return text.strip().split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""


def _fields(header: bytes) -> list[bytes]:
    """Header fields with their continuation lines (RFC 5322 §2.2.3)."""
    fields: list[bytes] = []
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def strip_ours(header: bytes, authserv_id: str) -> bytes:
    """The header section without Authentication-Results fields claiming `authserv_id`
    (RFC 8601 §5: such fields from outside our boundary MUST be deleted)."""
    ours = authserv_id.lower()
    kept = []
    for f in _fields(header):
        name, colon, value = f.partition(b":")
        is_results = colon and name.strip().lower() == b"authentication-results"
        if is_results and _authserv_id(value) == ours:
            continue
        kept.append(f)
    return b"\r\n".join(kept)
