"""What the DNS must hold, derived from the config: one `RecordSpec` per record, with its reason.

Both `mox dns zone` (which prints them) and `mox dnscheck` (which compares the published DNS with
them, and shows them as the fix) start here, so they can never disagree. The record texts and their
order follow mox's `DomainRecords` (reference §3).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from mox.config.load import DEFAULT_PORTS, LoadedConfig
from mox.config.model import Domain, Listener
from mox.dane import load_host_key, tlsa_for_key
from mox.dkim.keys import DkimPrivateKey, load_private_key, public_record
from mox.dns.records import (
    Caa,
    Dmarc,
    MtaStsPolicy,
    MtaStsRecord,
    Mx,
    Spf,
    SpfDirective,
    Srv,
    Tlsa,
    TlsRpt,
)

__all__ = [
    "DomainFacts",
    "ExpectError",
    "Facts",
    "Need",
    "RecordSpec",
    "ServicePorts",
    "build_records",
    "gather_facts",
    "mta_sts_id",
    "mta_sts_policy",
]

Need = Literal["required", "recommended", "optional"]


class ExpectError(Exception):
    """The config names something that cannot be read (a key file); the message says what."""


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record the config implies, with the comment lines that explain it."""

    name: str  # lower case, no trailing dot
    rtype: str
    value: str  # RDATA presentation format; for TXT the plain text (joined strings)
    section: str  # the dnscheck section that checks it
    need: Need
    comment: tuple[str, ...] = ()
    commented_out: bool = False  # printed with ";; " (e.g. TLSA in an unsigned zone)
    owner: str = ""  # the domain the record is for, or "" for the host's records


@dataclass(frozen=True, slots=True)
class ServicePorts:
    """Ports of the services offered on non-loopback listeners; None when not offered."""

    smtp: int | None = None
    submission: int | None = None
    submissions: int | None = None
    imap: int | None = None
    imaps: int | None = None
    https: int | None = None


@dataclass(frozen=True, slots=True)
class DomainFacts:
    name: str
    config: Domain
    dkim: dict[str, DkimPrivateKey]
    client_settings_host: str


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything about the installation that decides the DNS records."""

    hostname: str
    public_ips: tuple[str, ...]
    host_keys: tuple[tuple[Path, PublicKeyTypes], ...]
    services: ServicePorts
    domains: tuple[DomainFacts, ...]
    host_tlsrpt: str | None  # address for the host's TLS reports
    acme: bool  # certificates from ACME on some listener
    caa_issuers: tuple[str, ...] = ()
    acme_account_uri: str | None = None
    dnssec: bool = False


def _public_listener(listener: Listener, public_ips: Sequence[str]) -> bool:
    """Listens on a public IP, or on a non-loopback address (a wildcard, or behind NAT)."""
    return any(ip in public_ips or not ipaddress.ip_address(ip).is_loopback for ip in listener.ips)


def _public_ips(loaded: LoadedConfig) -> tuple[str, ...]:
    cfg = loaded.config
    if cfg.public_ips:
        return tuple(cfg.public_ips)
    out: list[str] = []
    for listener in cfg.listeners.values():
        for ip in listener.ips:
            addr = ipaddress.ip_address(ip)
            if addr.is_global and ip not in out:
                out.append(ip)
    return tuple(out)


def _services(loaded: LoadedConfig, public_ips: Sequence[str]) -> ServicePorts:
    ports: dict[str, int] = {}
    for listener in loaded.config.listeners.values():
        if not _public_listener(listener, public_ips):
            continue
        for svc in ("smtp", "submission", "submissions", "imap", "imaps", "https"):
            toggle = getattr(listener, svc)
            if toggle.enabled and svc not in ports:
                ports[svc] = toggle.port or DEFAULT_PORTS[svc]
    return ServicePorts(**ports)


def gather_facts(
    loaded: LoadedConfig,
    domains: Sequence[str] = (),
    *,
    dnssec: bool = False,
    caa_issuers: Sequence[str] = (),
    acme_account_uri: str | None = None,
) -> Facts:
    """Read the config and the key files it names; raises ExpectError for unusable ones."""
    cfg = loaded.config
    names = [d.rstrip(".").lower() for d in domains] or list(cfg.domains)
    for name in names:
        if name not in cfg.domains:
            raise ExpectError(f"domain {name!r} is not in the config")
    host_keys: list[tuple[Path, PublicKeyTypes]] = []
    acme = False
    acme_issuers: list[str] = []
    for listener in cfg.listeners.values():
        if listener.tls is None:
            continue
        acme = acme or listener.tls.acme is not None
        provider = cfg.acme.get(listener.tls.acme or "")
        if provider is not None:
            issuer = provider.issuer_domain_name
            if issuer is None and "letsencrypt.org" in provider.directory_url:
                issuer = "letsencrypt.org"
            if issuer is not None and issuer not in acme_issuers:
                acme_issuers.append(issuer)
        for key_path in listener.tls.host_private_key_files:
            path = loaded.resolve(key_path)
            if any(p == path for p, _ in host_keys):
                continue
            try:
                host_keys.append((path, load_host_key(path).public_key()))
            except (OSError, ValueError) as exc:
                raise ExpectError(f"host key {path}: {exc}") from None
    dom_facts = []
    for name in names:
        dom = cfg.domains[name]
        dkim: dict[str, DkimPrivateKey] = {}
        for selector, sel in dom.dkim.selectors.items():
            path = loaded.resolve(sel.private_key_file)
            try:
                dkim[selector] = load_private_key(path)
            except (OSError, ValueError) as exc:
                raise ExpectError(f"DKIM key {path}: {exc}") from None
        dom_facts.append(DomainFacts(name, dom, dkim, dom.client_settings_domain or cfg.hostname))
    # The host's TLS reports go to the TLSRPT address of the host's own domain when it is a mail
    # domain, else to that of the first domain with one (the config has no separate host setting).
    host_tlsrpt = None
    candidates = sorted(cfg.domains.items(), key=lambda item: item[0] != cfg.hostname)
    for dname, dom in candidates:
        if dom.tlsrpt is not None:
            host_tlsrpt = f"{dom.tlsrpt.localpart}@{dname}"
            break
    # RFC 8659 §4.2: the issuers our certificates come from; the ACME CAs unless given.
    issuers = tuple(caa_issuers) or tuple(acme_issuers)
    public_ips = _public_ips(loaded)
    return Facts(
        hostname=cfg.hostname,
        public_ips=public_ips,
        host_keys=tuple(host_keys),
        services=_services(loaded, public_ips),
        domains=tuple(dom_facts),
        host_tlsrpt=host_tlsrpt,
        acme=acme,
        caa_issuers=issuers,
        acme_account_uri=acme_account_uri,
        dnssec=dnssec,
    )


def mta_sts_policy(facts: Facts, dom: DomainFacts) -> MtaStsPolicy | None:
    m = dom.config.mta_sts
    if m is None:
        return None
    return MtaStsPolicy(m.mode, m.max_age, tuple(m.mx) or (facts.hostname,))


def mta_sts_id(facts: Facts, dom: DomainFacts) -> str | None:
    """The configured policy id with 8 hex digits of the policy's hash appended, so the id changes
    whenever the policy does (RFC 8461 §3.1: senders refetch only on a new id)."""
    m = dom.config.mta_sts
    policy = mta_sts_policy(facts, dom)
    if m is None or policy is None:
        return None
    digest = hashlib.sha256(policy.to_text().encode()).hexdigest()[:8]
    return m.policy_id[:24] + digest


def _host_records(facts: Facts) -> list[RecordSpec]:
    host = facts.hostname
    out: list[RecordSpec] = []
    for i, ip in enumerate(facts.public_ips):
        rtype = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
        comment = ("The mail host's addresses; the MX records point here.",) if i == 0 else ()
        out.append(RecordSpec(host, rtype, ip, "MX", "required", comment))
    tlsa_comment: tuple[str, ...] = (
        "DANE: a server delivering to us over SMTP (port 25) must verify our TLS certificate",
        'with DANE-EE (3), by the SHA2-256 hash (1) of its public key ("SPKI", 1). The keys',
        "stay the same across certificate renewals. Create these once: they are for the machine.",
    )
    if not facts.dnssec:
        tlsa_comment += (
            "WARNING: DANE needs a DNSSEC-signed zone; the records are commented out. Sign the",
            "zone, then run `mox dns zone --dnssec` again.",
        )
    for i, (_, pub) in enumerate(facts.host_keys):
        out.append(
            RecordSpec(
                f"_25._tcp.{host}",
                "TLSA",
                tlsa_for_key(pub).to_text(),
                "DANE",
                "recommended",
                tlsa_comment if i == 0 else (),
                commented_out=not facts.dnssec,
            )
        )
    out.append(
        RecordSpec(
            host,
            "TXT",
            Spf((SpfDirective("a"), SpfDirective("all", "-"))).to_text(),
            "SPF",
            "required",
            (
                "SPF for the host itself, for messages from the host (DSNs) with an empty or",
                "host-domain envelope sender: relaxed DMARC alignment then passes.",
            ),
        )
    )
    if facts.host_tlsrpt is not None:
        out.append(
            RecordSpec(
                f"_smtp._tls.{host}",
                "TXT",
                TlsRpt((f"mailto:{facts.host_tlsrpt}",)).to_text(),
                "TLSRPT",
                "recommended",
                (
                    "Ask senders for reports about TLS connections to this host (for DANE),",
                    "RFC 8460.",
                ),
            )
        )
    return out


def _srv_records(facts: Facts, dom: DomainFacts) -> list[RecordSpec]:
    target = dom.client_settings_host + "."
    svc = facts.services
    out: list[RecordSpec] = []
    # RFC 6186 §3.1, RFC 8314 §5.1: implicit TLS services first; "0 0 0 ." says "not offered".
    wanted: list[tuple[str, int | None, Need]] = [
        ("_imaps._tcp", svc.imaps, "required"),
        ("_submissions._tcp", svc.submissions, "required"),
        ("_imap._tcp", svc.imap, "optional"),
        ("_submission._tcp", svc.submission, "optional"),
        ("_pop3._tcp", None, "optional"),
        ("_pop3s._tcp", None, "optional"),
    ]
    for i, (label, port, need) in enumerate(wanted):
        srv = Srv(0, 1, port, target) if port else Srv(0, 0, 0, ".")
        comment: tuple[str, ...] = ()
        if i == 0:
            comment = ("Mail clients find IMAP and submission through these (RFC 6186, RFC 8314).",)
        elif i == 2:
            comment = ("Services that are not offered, so clients do not try them (optional).",)
        out.append(
            RecordSpec(
                f"{label}.{dom.name}",
                "SRV",
                srv.to_text(),
                "SRV",
                need if port or need == "optional" else "recommended",
                comment,
                owner=dom.name,
            )
        )
    return out


def _caa_records(facts: Facts, name: str, owner: str) -> list[RecordSpec]:
    if not facts.caa_issuers:
        return [
            RecordSpec(
                name,
                "CAA",
                Caa(0, "issue", "letsencrypt.org").to_text(),
                "CAA",
                "optional",
                (
                    "Optional: allow only your certificate authority to issue certificates for",
                    "the domain (RFC 8659). Name your CA with `--caa-issuer`, e.g.",
                    "letsencrypt.org, to publish this record.",
                ),
                commented_out=True,
                owner=owner,
            )
        ]
    out = []
    for i, issuer in enumerate(facts.caa_issuers):
        value = issuer
        if facts.acme_account_uri is not None:
            # RFC 8657 §3 (accounturi), §4 (validationmethods)
            value += f"; accounturi={facts.acme_account_uri}; validationmethods=tls-alpn-01,http-01"
        out.append(
            RecordSpec(
                name,
                "CAA",
                Caa(0, "issue", value).to_text(),
                "CAA",
                "optional",
                ("Only these certificate authorities may issue certificates (RFC 8659).",)
                if i == 0
                else (),
                owner=owner,
            )
        )
    return out


def _domain_records(facts: Facts, dom: DomainFacts) -> list[RecordSpec]:
    d = dom.name
    host = facts.hostname
    out: list[RecordSpec] = [
        RecordSpec(
            d,
            "MX",
            Mx(10, host + ".").to_text(),
            "MX",
            "required",
            ("Deliver email for the domain to this host.",),
            owner=d,
        )
    ]
    for i, (selector, key) in enumerate(dom.dkim.items()):
        signing = selector in dom.config.dkim.sign
        comment: tuple[str, ...] = ()
        if i == 0:
            comment = (
                "DKIM keys: outgoing messages are signed with "
                + (", ".join(dom.config.dkim.sign) or "no selector")
                + "; the others are",
                "ready for rotation, switching to them is just a config change (RFC 6376).",
            )
        out.append(
            RecordSpec(
                f"{selector}._domainkey.{d}",
                "TXT",
                public_record(key).to_text(),
                "DKIM",
                "required" if signing else "recommended",
                comment,
                owner=d,
            )
        )
    ips = [
        SpfDirective("ip4" if ipaddress.ip_address(ip).version == 4 else "ip6", "+", ip)
        for ip in facts.public_ips
    ]
    out.append(
        RecordSpec(
            d,
            "TXT",
            Spf((*ips, SpfDirective("mx"), SpfDirective("all", "~"))).to_text(),
            "SPF",
            "required",
            (
                "The MX host may send for the domain (RFC 7208). ~all (softfail) rather than",
                "-all, so that old servers do not reject before they look at DKIM and DMARC.",
            ),
            owner=d,
        )
    )
    rua: tuple[str, ...] = ()
    if dom.config.dmarc is not None:
        rua = (f"mailto:{dom.config.dmarc.localpart}@{d}!10m",)
    out.append(
        RecordSpec(
            f"_dmarc.{d}",
            "TXT",
            Dmarc("reject", rua=rua).to_text(),
            "DMARC",
            "required",
            (
                "Reject messages that fail DMARC (no aligned DKIM or SPF pass) and ask for",
                "aggregate reports (RFC 7489). While testing, you may use p=none.",
            ),
            owner=d,
        )
    )
    ident = mta_sts_id(facts, dom)
    if ident is not None:
        out.append(
            RecordSpec(
                f"mta-sts.{d}",
                "CNAME",
                host + ".",
                "MTA-STS",
                "recommended",
                (
                    "MTA-STS: senders verify our certificate with the WebPKI when they deliver",
                    "over SMTP with STARTTLS (RFC 8461). The policy is served by this host; the id",
                    "changes with the policy.",
                ),
                owner=d,
            )
        )
        out.append(
            RecordSpec(
                f"_mta-sts.{d}",
                "TXT",
                MtaStsRecord(ident).to_text(),
                "MTA-STS",
                "recommended",
                owner=d,
            )
        )
    if dom.config.tlsrpt is not None:
        out.append(
            RecordSpec(
                f"_smtp._tls.{d}",
                "TXT",
                TlsRpt((f"mailto:{dom.config.tlsrpt.localpart}@{d}",)).to_text(),
                "TLSRPT",
                "recommended",
                ("Ask for reports about TLS failures when delivering to us (RFC 8460).",),
                owner=d,
            )
        )
    if dom.client_settings_host != host:
        out.append(
            RecordSpec(
                dom.client_settings_host,
                "CNAME",
                host + ".",
                "Autoconfig",
                "required",
                ("The host name mail clients are told to use.",),
                owner=d,
            )
        )
    if facts.services.https is not None:
        out.append(
            RecordSpec(
                f"autoconfig.{d}",
                "CNAME",
                host + ".",
                "Autoconfig",
                "recommended",
                ("Autoconfig is used by Thunderbird, autodiscover (in theory) by Microsoft.",),
                owner=d,
            )
        )
        out.append(
            RecordSpec(
                f"_autodiscover._tcp.{d}",
                "SRV",
                Srv(0, 1, facts.services.https, dom.client_settings_host + ".").to_text(),
                "Autoconfig",
                "recommended",
                owner=d,
            )
        )
    out += _srv_records(facts, dom)
    out += _caa_records(facts, d, d)
    return out


def build_records(facts: Facts) -> list[RecordSpec]:
    """Host records first (once), then each domain's, in mox's order."""
    out = _host_records(facts)
    for dom in facts.domains:
        out += _domain_records(facts, dom)
    host = facts.hostname
    if not any(host == d.name or host.endswith("." + d.name) for d in facts.domains):
        out += _caa_records(facts, host, "")
    return out


def expected_tlsa(facts: Facts) -> set[Tlsa]:
    return {tlsa_for_key(pub) for _, pub in facts.host_keys}
