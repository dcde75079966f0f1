"""Sender Policy Framework for incoming mail, RFC 7208: a typed adapter over pyspf.

pyspf evaluates `check_host()` (RFC 7208 §4, §5) with the processing limits of §4.6.4 (10
DNS-querying terms, 2 void lookups, 10 MX and PTR names) and macros (§7). It is synchronous and
asks DNS through the module function `spf.DNSLookup`; we replace that function once with a
dispatcher that answers from the `Resolver` of the evaluation running in the current thread. An
evaluation runs in a worker thread and each of its lookups is awaited on the event loop, so pyspf
never touches the system resolver and every answer's DNSSEC status is known.

`verify()` checks the MAIL FROM identity, or the HELO identity for a null reverse-path (RFC 7208
§2.4); `SpfResult.received_spf()` renders the `Received-SPF` header (RFC 7208 §9.1).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import spf as pyspf

from mox.authres import fold
from mox.dns.resolver import DnsError, NotFound, Resolver

__all__ = ["SpfResult", "SpfStatus", "verify"]

log = logging.getLogger(__name__)

SpfStatus = Literal["none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"]
_STATUSES: tuple[SpfStatus, ...] = (
    "none",
    "neutral",
    "pass",
    "fail",
    "softfail",
    "temperror",
    "permerror",
)
_QTYPES = {"A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME"}
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="mox-spf")
_local = threading.local()


@dataclass(frozen=True, slots=True)
class SpfResult:
    """The outcome of check_host() for one identity (RFC 7208 §2.6)."""

    status: SpfStatus
    identity: Literal["mailfrom", "helo"]
    domain: str  # the domain that was checked
    sender: str  # the MAIL FROM address, or postmaster@<helo> (RFC 7208 §2.4)
    ip: str
    helo: str
    mechanism: str = ""  # the directive that matched
    problem: str = ""  # why the result is an error
    explanation: str = ""  # exp= text for fail (RFC 7208 §6.2)
    authentic: bool = False  # every DNS answer was DNSSEC-validated

    def comment(self, receiver: str) -> str:
        """Human text for Received-SPF, after the examples of RFC 7208 §9.1."""
        who, ip = self.domain, self.ip
        text = {
            "pass": f"domain of {who} designates {ip} as permitted sender",
            "fail": f"domain of {who} does not designate {ip} as permitted sender",
            "softfail": (
                f"domain of transitioning {who} does not designate {ip} as permitted sender"
            ),
            "neutral": f"{ip} is neither permitted nor denied by domain of {who}",
            "none": f"domain of {who} does not designate permitted sender hosts",
            "temperror": f"temporary error checking domain of {who}",
            "permerror": f"permanent error in SPF record of {who}",
        }[self.status]
        return f"{receiver}: {text}"

    def received_spf(self, receiver: str) -> bytes:
        """The `Received-SPF` header line, folded, CRLF-terminated (RFC 7208 §9.1)."""
        pairs = [
            ("client-ip", self.ip),
            ("envelope-from", _quote(self.sender) if self.identity == "mailfrom" else ""),
            ("helo", _quote(self.helo)),
            ("problem", _quote(self.problem[:200])),
            ("mechanism", _quote(self.mechanism)),
            ("receiver", _quote(receiver)),
            ("identity", self.identity),
        ]
        kv = [f"{k}={v}" for k, v in pairs if v]
        items = [f"{self.status} ({_comment_text(self.comment(receiver))})"]
        items += [item + ";" for item in kv[:-1]] + kv[-1:]
        return fold("Received-SPF", items)


def _quote(value: str) -> str:
    """A dot-atom as is, anything else as a quoted-string (RFC 5322 §3.2.4)."""
    if not value:
        return ""
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@:-]+", value) and "@" not in value:
        return value
    return '"' + re.sub(r'(["\\])', r"\\\1", value) + '"'


def _comment_text(text: str) -> str:
    return re.sub(r"([()\\])", r"\\\1", re.sub(r"[^\x20-\x7e]", "?", text))


class _Session:
    """The resolver of one evaluation, used from the worker thread that runs pyspf."""

    def __init__(self, resolver: Resolver, loop: asyncio.AbstractEventLoop, timeout: float):
        self.resolver = resolver
        self.loop = loop
        self.timeout = timeout
        self.authentic = True

    def lookup(self, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        if qtype not in _QTYPES:
            raise pyspf.TempError(f"DNS: unsupported type {qtype}")
        if qtype == "SPF":
            return []  # RFC 7208 §3.1: the SPF RR type is no longer used
        future = asyncio.run_coroutine_threadsafe(self.resolver.query(name, qtype), self.loop)
        try:
            answer = future.result(self.timeout)
        except NotFound as exc:
            self.authentic = self.authentic and exc.authentic
            return []  # RFC 7208 §4.6.4: counted as a void lookup by pyspf
        except DnsError as exc:
            self.authentic = False
            raise pyspf.TempError(f"DNS {exc}") from None  # RFC 7208 §2.6.6 temperror
        except concurrent.futures.TimeoutError:
            future.cancel()
            self.authentic = False
            raise pyspf.TempError(f"DNS timeout for {name} {qtype}") from None
        self.authentic = self.authentic and answer.authentic
        return [((name, qtype), v) for v in _values(qtype, answer.records)]


def _values(qtype: str, records: tuple[str, ...]) -> Iterator[Any]:
    """Our presentation-format RDATA as pyspf's dnspython driver returns it."""
    for rec in records:
        if qtype in ("A", "AAAA"):
            yield str(ipaddress.ip_address(rec))
        elif qtype == "MX":
            pref, _, host = rec.partition(" ")
            yield (int(pref), host.strip().rstrip(".") or ".")
        elif qtype in ("PTR", "CNAME"):
            yield rec.rstrip(".")
        else:
            yield (rec.encode("utf-8"),)  # TXT: the strings already joined (RFC 7208 §3.3)


def _dispatch(name: str, qtype: str, strict: object = True, timeout: object = None) -> Any:
    session: _Session | None = getattr(_local, "session", None)
    if session is None:
        # Never fall back to pyspf's own resolver: no query may leave our Resolver.
        raise pyspf.TempError("DNS: no resolver for this SPF evaluation")
    return session.lookup(str(name), str(qtype))


pyspf.DNSLookup = _dispatch


def _run(session: _Session, ip: str, sender: str, helo: str) -> tuple[str, str, str, str]:
    _local.session = session
    try:
        q = pyspf.query(i=ip, s=sender, h=helo, strict=True, timeout=session.timeout)
        result, _code, explanation = q.check()
        mechanism = str(getattr(q, "mechanism", "") or "")
        problem = str(getattr(q, "prob", "") or "")
        return str(result), mechanism, problem, str(explanation or "")
    finally:
        _local.session = None


async def verify(
    resolver: Resolver,
    ip: str,
    mail_from: str,
    helo: str,
    *,
    limit: float = 20.0,
) -> SpfResult:
    """check_host() for the MAIL FROM address, or for the HELO name when MAIL FROM is null.

    `limit` bounds the whole evaluation in seconds (RFC 7208 §4.6.4 suggests at least 20)."""
    identity: Literal["mailfrom", "helo"] = "mailfrom" if mail_from else "helo"
    helo = helo.strip()
    if identity == "helo":
        # RFC 7208 §2.3: only a HELO that is a domain name can be checked.
        if not helo or helo.startswith("[") or "." not in helo:
            return SpfResult("none", "helo", helo, "", ip, helo, problem="HELO is not a domain")
        sender = f"postmaster@{helo}"  # RFC 7208 §2.4
    else:
        sender = mail_from
    domain = sender.rpartition("@")[2].lower().rstrip(".")
    session = _Session(resolver, asyncio.get_running_loop(), limit / 2)
    try:
        loop = asyncio.get_running_loop()
        result, mechanism, problem, explanation = await asyncio.wait_for(
            loop.run_in_executor(_EXECUTOR, _run, session, ip, sender, helo), limit
        )
    except TimeoutError:
        return SpfResult("temperror", identity, domain, sender, ip, helo, problem="timeout")
    except Exception:  # a pyspf fault is not the sender's: tell them to retry, log it for us
        log.exception("spf evaluation failed", extra={"domain": domain})
        return SpfResult("temperror", identity, domain, sender, ip, helo, problem="internal error")
    status: SpfStatus = next((s for s in _STATUSES if s == result), "permerror")
    return SpfResult(
        status,
        identity,
        domain,
        sender,
        ip,
        helo,
        mechanism=mechanism if status not in ("none", "temperror", "permerror") else "",
        problem=problem if status in ("temperror", "permerror") else "",
        explanation=explanation if status == "fail" else "",
        authentic=session.authentic,
    )
