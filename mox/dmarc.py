"""DMARC evaluation of incoming mail, RFC 7489 §6.6, with the np= tag of RFC 9091.

Our own implementation (no library): the RFC5322.From domain is taken from the single From
header (§6.6.1), the policy record looked up at `_dmarc.<from domain>` and else at the
organizational domain (§6.6.3), found with the public suffix list shipped in the
`publicsuffixlist` package (§3.2; no download at run time). A pass needs an aligned SPF or DKIM
pass, relaxed or strict as `aspf`/`adkim` say (§3.1). On a fail the policy that applies is `p`,
`sp` for subdomains, or `np` for subdomains that do not exist (RFC 9091 §4.1); `pct` sampling
(§6.6.4) decides whether it is applied. As mox, quarantine is treated like reject, and a sampled-out
message is accepted with the override "sampled_out" noted for reports.
"""

from __future__ import annotations

import email.utils
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.header import decode_header, make_header
from functools import lru_cache
from typing import Literal

from publicsuffixlist import PublicSuffixList

from mox.dkim.verify import DkimResult
from mox.dns.records import Dmarc, RecordError
from mox.dns.resolver import DnsError, NotFound, Resolver
from mox.spf import SpfResult

__all__ = [
    "DmarcResult",
    "DmarcStatus",
    "PolicyLookup",
    "aligned",
    "from_domain",
    "lookup",
    "org_domain",
    "verify",
]

DmarcStatus = Literal["none", "pass", "fail", "temperror", "permerror"]


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped inside the package


def org_domain(domain: str) -> str:
    """The organizational domain (RFC 7489 §3.2): one label below the public suffix."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def aligned(identifier: str, from_dom: str, mode: str) -> bool:
    """Identifier alignment, RFC 7489 §3.1.1 (DKIM) and §3.1.2 (SPF)."""
    a, b = identifier.lower().rstrip("."), from_dom.lower().rstrip(".")
    if mode == "s":
        return a == b  # strict: exact match
    return org_domain(a) == org_domain(b)  # relaxed: same organizational domain


def from_domain(header: bytes) -> str | None:
    """The domain of the single RFC5322.From address (RFC 7489 §6.6.1), or None when the header
    has no From, more than one From, or more than one address in it."""
    values = []
    for m in re.finditer(rb"(?im)^from[ \t]*:(.*(?:\r?\n[ \t].*)*)", header):
        values.append(m.group(1).decode("utf-8", "replace"))
    if len(values) != 1:
        return None
    try:
        text = str(make_header(decode_header(values[0])))
    except (ValueError, LookupError, UnicodeError):
        text = values[0]
    addrs = [a for _, a in email.utils.getaddresses([text]) if a]
    if len(addrs) != 1 or "@" not in addrs[0]:
        return None
    domain = addrs[0].rpartition("@")[2].strip().rstrip(".").lower()
    if not domain or not re.fullmatch(r"[^\s@()<>\[\]]+", domain):
        return None
    try:
        return domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return None


@dataclass(frozen=True, slots=True)
class PolicyLookup:
    status: Literal["found", "none", "temperror", "permerror"]
    domain: str = ""  # where the record was found
    record: Dmarc | None = None
    authentic: bool = False
    reason: str = ""


async def _lookup_at(resolver: Resolver, domain: str) -> PolicyLookup:
    try:
        answer = await resolver.query(f"_dmarc.{domain}", "TXT")
    except NotFound as exc:
        return PolicyLookup("none", authentic=exc.authentic)
    except DnsError as exc:
        return PolicyLookup("temperror", reason=str(exc))
    # RFC 7489 §6.6.3: keep only records starting with v=DMARC1; one must remain
    texts = [t for t in answer.records if re.match(r"v\s*=\s*DMARC1\s*(;|$)", t)]
    if not texts:
        return PolicyLookup("none", authentic=answer.authentic)
    if len(texts) > 1:
        return PolicyLookup("none", domain, authentic=answer.authentic, reason="multiple records")
    try:
        record = Dmarc.parse(texts[0])
    except RecordError as exc:
        # RFC 7489 §11.2 (permerror): a syntactically incorrect DMARC record
        return PolicyLookup("permerror", domain, authentic=answer.authentic, reason=str(exc))
    return PolicyLookup("found", domain, record, answer.authentic)


async def lookup(resolver: Resolver, domain: str) -> PolicyLookup:
    """The DMARC record for a From domain: at the domain, else at its organizational domain."""
    found = await _lookup_at(resolver, domain)
    if found.status != "none" or found.domain:
        return found
    org = org_domain(domain)
    if org == domain:
        return found
    at_org = await _lookup_at(resolver, org)  # RFC 7489 §6.6.3 step 3
    if at_org.status == "none" and not at_org.domain:
        return PolicyLookup("none", authentic=found.authentic and at_org.authentic)
    return at_org


async def _nonexistent(resolver: Resolver, domain: str) -> bool:
    """RFC 9091 §2.1: NXDOMAIN or NODATA for A, AAAA and MX."""
    for rtype in ("A", "AAAA", "MX"):
        try:
            await resolver.query(domain, rtype)
            return False
        except NotFound as exc:
            if exc.nxdomain:
                return True
        except DnsError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class DmarcResult:
    status: DmarcStatus
    from_domain: str = ""
    policy_domain: str = ""
    record: Dmarc | None = None
    policy: str = "none"  # p, sp or np: what applies to this From domain
    reject: bool = False  # status fail, policy reject/quarantine, and sampled in
    overrides: tuple[str, ...] = field(default=())  # RFC 7489 Appendix C PolicyOverrideType
    dkim_aligned: bool = False
    spf_aligned: bool = False
    authentic: bool = False
    reason: str = ""


async def verify(
    resolver: Resolver,
    from_dom: str | None,
    dkim: Sequence[DkimResult],
    spf: SpfResult | None,
    *,
    rng: random.Random | None = None,
) -> DmarcResult:
    """The DMARC result for a message (RFC 7489 §6.6)."""
    if from_dom is None:
        return DmarcResult("permerror", reason="no single From address")  # RFC 7489 §6.6.1
    found = await lookup(resolver, from_dom)
    if found.status == "none":
        return DmarcResult("none", from_dom, authentic=found.authentic, reason=found.reason)
    if found.status in ("temperror", "permerror") or found.record is None:
        status: DmarcStatus = "temperror" if found.status == "temperror" else "permerror"
        return DmarcResult(status, from_dom, found.domain, reason=found.reason)
    rec = found.record
    dkim_ok = any(
        r.status == "pass" and aligned(r.domain, from_dom, rec.adkim) for r in dkim
    )  # RFC 7489 §3.1.1
    spf_ok = (
        spf is not None and spf.status == "pass" and aligned(spf.domain, from_dom, rec.aspf)
    )  # RFC 7489 §3.1.2
    dkim_auth = any(
        r.authentic and r.status == "pass" and aligned(r.domain, from_dom, rec.adkim) for r in dkim
    )
    spf_auth = spf_ok and spf is not None and spf.authentic
    authentic = found.authentic and (dkim_auth or spf_auth or not (dkim_ok or spf_ok))
    # RFC 7489 §6.6.2 / §6.3: p for the domain itself, sp below it, np (RFC 9091) when absent
    policy = rec.policy
    if found.domain != from_dom:
        policy = rec.subdomain_policy or rec.policy
        if rec.nonexistent_policy is not None and await _nonexistent(resolver, from_dom):
            policy = rec.nonexistent_policy
    base = DmarcResult(
        "pass",
        from_dom,
        found.domain,
        rec,
        policy,
        dkim_aligned=dkim_ok,
        spf_aligned=spf_ok,
        authentic=authentic,
    )
    if dkim_ok or spf_ok:
        return base
    temp = any(r.status == "temperror" and aligned(r.domain, from_dom, rec.adkim) for r in dkim)
    temp = temp or (
        spf is not None and spf.status == "temperror" and aligned(spf.domain, from_dom, rec.aspf)
    )
    if temp:
        # An aligned identifier could not be checked: say so instead of failing (RFC 7489 §6.6.2)
        return replace(base, status="temperror", reason="aligned check had a temporary error")
    enforce = policy in ("reject", "quarantine")  # as mox: quarantine is handled as reject
    overrides: tuple[str, ...] = ()
    if enforce and rec.percentage < 100:
        draw = (rng or random.SystemRandom()).randrange(100)
        if draw >= rec.percentage:  # RFC 7489 §6.6.4 pct sampling
            enforce = False
            overrides = ("sampled_out",)
    return replace(base, status="fail", reject=enforce, overrides=overrides)
