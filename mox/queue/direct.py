"""Direct delivery to a recipient domain's MX hosts, with the strongest TLS policy available.

Order of policies (as mox, RFC 7672 §2.2 and RFC 8461 §4): DANE when the MX and address answers
are DNSSEC-authentic and TLSA records exist (no plaintext fallback), else MTA-STS in enforce mode
(STARTTLS with a certificate valid for the MX name, only MX hosts the policy lists), else
opportunistic STARTTLS, retried in plaintext when the TLS handshake fails.

Next hops: MX records in preference order (RFC 5321 §5.1), the domain itself when it has none
(implicit MX), a permanent failure for a null MX (RFC 7505 §4.3) or a domain that does not exist.
A host's addresses are dialed with the family not dialed last first (mox/queue/dialed.py).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from dataclasses import dataclass, field

from mox.dns.check.connect import https_get
from mox.dns.records import MtaStsPolicy, MtaStsRecord, Mx, RecordError, Tlsa
from mox.dns.resolver import DnsError, NotFound, Resolver, lookup_ips
from mox.queue.dialed import dual_stack, order_ips, policy_refusal
from mox.smtpclient.client import RcptResult, SmtpClientError, TlsPolicy, send

__all__ = ["DeliveryAttempt", "MtaStsCache", "deliver_direct"]

log = logging.getLogger(__name__)


@dataclass
class DeliveryAttempt:
    """What the queue asks: one message to recipients of one domain."""

    domain: str
    mail_from: str
    rcpts: list[tuple[str, list[str]]]  # (address, RCPT parameters)
    data: bytes
    mail_options: list[str]
    requiretls: bool | None
    ehlo_name: str
    port: int = 25
    ca_files: tuple[str, ...] = ()
    tls_results: list[tuple[str, str, str]] = field(default_factory=list)  # (domain, type, result)
    smtputf8_required: bool = False  # RFC 6531 §3.4: only to hosts announcing SMTPUTF8
    first_attempt: bool = False  # no earlier attempt for this message
    dialed: dict[str, list[str]] = field(default_factory=dict)  # host → IPs, updated here
    softened: set[str] = field(default_factory=set)  # rcpts whose 5.7.x reply is temporary


class HopFailure(Exception):
    def __init__(self, code: int, text: str, permanent: bool) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.permanent = permanent


@dataclass
class _Cached:
    record_id: str
    policy: MtaStsPolicy
    expires: float


class MtaStsCache:
    """Fetched MTA-STS policies (RFC 8461 §3.3, §5.1), kept for max_age, re-fetched when the
    `_mta-sts` record's id changes."""

    def __init__(self, resolver: Resolver, port: int = 443, ca_files: tuple[str, ...] = ()):
        self.resolver = resolver
        self.port = port
        self.ca_files = ca_files
        self._cache: dict[str, _Cached] = {}

    async def get(self, domain: str) -> MtaStsPolicy | None:
        try:
            txt = await self.resolver.query(f"_mta-sts.{domain}", "TXT")
        except NotFound:
            cached = self._cache.get(domain)
            # RFC 8461 §5.1: a cached unexpired policy still applies if the record vanished.
            return cached.policy if cached and cached.expires > time.time() else None
        records = [r for r in txt.records if r.startswith("v=STSv1")]
        if len(records) != 1:
            return None
        try:
            record = MtaStsRecord.parse(records[0])
        except RecordError:
            return None
        cached = self._cache.get(domain)
        if cached and cached.record_id == record.id and cached.expires > time.time():
            return cached.policy
        host = f"mta-sts.{domain}"
        ips, _ = await lookup_ips(self.resolver, host)
        if not ips:
            raise HopFailure(451, f"no address for {host} to fetch the MTA-STS policy", False)
        ctx = ssl.create_default_context()
        for ca in self.ca_files:
            ctx.load_verify_locations(ca)
        try:
            resp = await https_get(ips[0], self.port, host, "/.well-known/mta-sts.txt", ctx, 30)
        except Exception as e:
            # RFC 8461 §5.1: a failed fetch without a cached policy: deliver as without policy
            # is allowed; we prefer to try again later, as mox does.
            raise HopFailure(451, f"fetching MTA-STS policy of {domain}: {e}", False) from None
        if resp.status != 200:
            raise HopFailure(451, f"MTA-STS policy of {domain}: HTTP {resp.status}", False)
        try:
            policy = MtaStsPolicy.parse(resp.body.decode("utf-8", "replace"))
        except RecordError as e:
            raise HopFailure(451, f"MTA-STS policy of {domain}: {e}", False) from None
        self._cache[domain] = _Cached(record.id, policy, time.time() + policy.max_age)
        return policy


async def next_hops(resolver: Resolver, domain: str) -> tuple[list[str], bool]:
    """MX hosts in preference order (random among equals), and whether the answer was authentic."""
    try:
        answer = await resolver.query(domain, "MX")
    except NotFound as e:
        if e.nxdomain:
            raise HopFailure(550, f"5.1.2 domain {domain} does not exist", True) from None
        return [domain], e.authentic  # RFC 5321 §5.1: implicit MX
    except DnsError as e:
        raise HopFailure(451, f"4.4.3 DNS error for {domain}: {e}", False) from None
    mxs = []
    for text in answer.records:
        try:
            mxs.append(Mx.parse(text))
        except RecordError:
            continue
    if any(mx.is_null for mx in mxs):
        raise HopFailure(550, f"5.1.10 {domain} does not accept mail (null MX)", True)  # RFC 7505
    if not mxs:
        return [domain], answer.authentic
    random.shuffle(mxs)
    mxs.sort(key=lambda m: m.preference)
    return [m.host.rstrip(".") for m in mxs], answer.authentic


async def deliver_direct(
    resolver: Resolver, mtasts: MtaStsCache, attempt: DeliveryAttempt
) -> list[RcptResult]:
    """Try the MX hosts in order until one takes the message; raises HopFailure if none did."""
    hosts, mx_authentic = await next_hops(resolver, attempt.domain)
    policy = None
    if attempt.requiretls is not False:  # "TLS-Required: No" skips MTA-STS (RFC 8689 §5)
        policy = await mtasts.get(attempt.domain)
    enforce = policy is not None and policy.mode == "enforce"
    if enforce and policy is not None:
        allowed = [h for h in hosts if policy.matches(h)]
        if not allowed:
            attempt.tls_results.append((attempt.domain, "sts", "validation-failure"))
            raise HopFailure(
                451, f"4.7.5 no MX of {attempt.domain} allowed by MTA-STS policy", False
            )
        hosts = allowed
    last = HopFailure(451, "4.4.1 no MX host could be reached", False)
    for host in hosts:
        try:
            ips, ip_authentic = await lookup_ips(resolver, host)
        except DnsError as e:
            last = HopFailure(451, f"4.4.3 resolving {host}: {e}", False)
            continue
        tlsa: list[Tlsa] = []
        if mx_authentic and ip_authentic and attempt.requiretls is not False:
            tlsa = await _tlsa(resolver, host, attempt.port)
        if tlsa:
            tls = TlsPolicy("dane", tuple(tlsa))
            policy_domain, policy_type = host, "tlsa"
        elif enforce:
            tls = TlsPolicy("pkix", ca_files=attempt.ca_files)
            policy_domain, policy_type = attempt.domain, "sts"
        else:
            tls = TlsPolicy("opportunistic")
            policy_domain, policy_type = attempt.domain, "no-policy-found"
        # As mox (GatherIPs): start with the address family not dialed last time.
        ips = order_ips(ips, attempt.dialed.get(host, []))
        # As mox: a first-attempt 5.7.x from a dual-stack host is made temporary, so the other
        # family is tried next time before the sender gets a bounce (blocklisted IP workaround).
        soften = attempt.first_attempt and dual_stack(ips)
        for ip in ips:
            attempt.dialed.setdefault(host, []).append(ip)
            try:
                result = await _session(attempt, ip, host, tls)
            except SmtpClientError as e:
                if e.tls_failure:
                    attempt.tls_results.append((policy_domain, policy_type, e.tls_failure))
                if e.permanent and soften and policy_refusal(e.code, e.text):
                    last = HopFailure(e.code, e.text, False)
                    break  # this host answered; the next attempt starts with the other family
                if e.permanent:
                    raise HopFailure(e.code, e.text, True) from None
                last = HopFailure(e.code if e.code >= 400 else 451, e.text, False)
                continue
            attempt.tls_results.append((policy_domain, policy_type, "success"))
            if soften:
                attempt.softened.update(r.rcpt for r in result if policy_refusal(r.code, r.text))
            return result
    raise last


async def _session(
    attempt: DeliveryAttempt, ip: str, host: str, tls: TlsPolicy
) -> list[RcptResult]:
    async def attempt_with(policy: TlsPolicy) -> list[RcptResult]:
        result = await send(
            ip=ip,
            port=attempt.port,
            host=host,
            ehlo_name=attempt.ehlo_name,
            policy=policy,
            mail_from=attempt.mail_from,
            rcpts=attempt.rcpts,
            data=attempt.data,
            mail_options=attempt.mail_options,
            requiretls=bool(attempt.requiretls),
            smtputf8_required=attempt.smtputf8_required,
        )
        return result.rcpts

    try:
        return await attempt_with(tls)
    except SmtpClientError as e:
        if tls.mode == "opportunistic" and e.tls_failure and not attempt.requiretls:
            # Opportunistic TLS failed: try again in plaintext (as mox; RFC 3207 §4 leaves it to
            # policy). Never when a policy requires TLS.
            log.info("TLS failed, retrying without", extra={"host": host, "err": e.text})
            return await attempt_with(TlsPolicy("none"))
        raise


async def _tlsa(resolver: Resolver, host: str, port: int) -> list[Tlsa]:
    try:
        answer = await resolver.query(f"_{port}._tcp.{host}", "TLSA")  # RFC 7672 §2.2.1
    except NotFound:
        return []
    except DnsError as e:
        # RFC 7672 §2.2.1: a failed TLSA lookup in a signed zone must not become plaintext.
        raise HopFailure(451, f"4.7.5 TLSA lookup for {host} failed: {e}", False) from None
    if not answer.authentic:
        return []  # RFC 7672 §2.2.2: only DNSSEC-validated TLSA records count
    out = []
    for text in answer.records:
        try:
            out.append(Tlsa.parse(text))
        except RecordError:
            continue
    return out
