"""Rulesets per destination address, as mox's `store.MessageRuleset` and `isListDomain`
(reference §1.2 step 2, §1.3): the first ruleset whose rules all match picks the mailbox and
changes the junk checks (mailing lists, forwards).

Regular expressions match substrings (as Go's MatchString). Header field names and values are
lower-cased and values trimmed before matching; every `headers_regexp` entry must match some
field. The verified domain matches the domain itself and its subdomains, verified by SPF (MAIL
FROM or EHLO, RFC 7208) or a passing DKIM signature (RFC 6376).
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from functools import lru_cache
from typing import Any

from mox.config.model import Ruleset

__all__ = ["in_domain", "is_list_domain", "match", "verified_domains"]


@lru_cache(maxsize=512)
def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # validated when the config was loaded


def verified_domains(meta: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(SPF-verified domains, DKIM-verified domains) from the message's `auth` metadata."""
    auth = meta.get("auth") or {}
    spf = auth.get("spf") or {}
    spf_domains: set[str] = set()
    if spf.get("status") == "pass" and spf.get("domain"):
        spf_domains.add(str(spf["domain"]).lower().rstrip("."))
    dkim_domains = {
        str(d.get("domain", "")).lower().rstrip(".")
        for d in auth.get("dkim") or []
        if d.get("status") == "pass" and d.get("domain")
    }
    return spf_domains, dkim_domains


def in_domain(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


MAX_FIELDS = 1000  # header fields considered for headers_regexp (bounded work per message)
MAX_VALUE = 4096  # characters of a field value matched (bounded regexp work per field)


def _msg_from(msg: Any) -> str | None:
    froms = getaddresses([str(v) for v in msg.get_all("From", [])])
    if len(froms) != 1 or "@" not in froms[0][1]:
        return None  # mox: only a single From address can match
    localpart, _, domain = froms[0][1].rpartition("@")
    return f"{localpart}@{domain.lower()}"


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value)  # RFC 5322 §2.2.3


def match(
    rulesets: list[Ruleset], mail_from: str, header: bytes, meta: dict[str, Any]
) -> Ruleset | None:
    """The first ruleset of a destination that matches the message, or None."""
    if not rulesets:
        return None
    msg = BytesHeaderParser().parsebytes(header, headersonly=True)
    spf_domains, dkim_domains = verified_domains(meta)
    verified = spf_domains | dkim_domains
    fields: list[tuple[str, str]] | None = None
    for rs in rulesets:
        if rs.smtp_mail_from_regexp and not _re(rs.smtp_mail_from_regexp).search(mail_from):
            continue
        if rs.msg_from_regexp:
            addr = _msg_from(msg)
            if addr is None or not _re(rs.msg_from_regexp).search(addr):
                continue
        if rs.verified_domain and not any(in_domain(d, rs.verified_domain) for d in verified):
            continue
        if rs.headers_regexp:
            if fields is None:
                fields = [
                    (k.lower(), _unfold(str(v)).strip().lower()[:MAX_VALUE])
                    for k, v in msg.items()[:MAX_FIELDS]
                ]
            if not all(
                any(_re(k).search(name) and _re(v).search(value) for name, value in fields)
                for k, v in rs.headers_regexp.items()
            ):
                continue
        return rs
    return None


def is_list_domain(domain: str, meta: dict[str, Any]) -> bool:
    """The list domain is verified: SPF pass for the MAIL FROM domain, or a passing DKIM
    signature of exactly that domain (as mox's isListDomain)."""
    auth = meta.get("auth") or {}
    spf = auth.get("spf") or {}
    if (
        spf.get("status") == "pass"
        and spf.get("identity", "mailfrom") == "mailfrom"
        and str(spf.get("domain", "")).lower().rstrip(".") == domain
    ):
        return True
    return domain in verified_domains(meta)[1]
