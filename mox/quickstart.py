"""`mox quickstart you@example.com`: a ready-to-run installation in one directory, as mox's.

Writes `mox.toml` (checked like `mox config check`), DKIM keys (`<year>a`, `<year>b`, RSA-2048; `a`
signs), DANE host keys (ECDSA P-256 and RSA-2048) with a self-signed certificate and a certificate
signing request for them, the admin password file, the account with its password in the store, a
systemd unit, and `quickstart.log` with everything printed: passwords, client settings, the DNS
zone and the next steps. Nothing is overwritten; on any error the files written so far are removed.

It works offline: no DNS or internet lookups happen unless a resolver is given, and the output
says which of mox's checks were skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mox.auth.password import derive_credentials
from mox.config.load import ConfigError, LoadedConfig, parse_config
from mox.config.model import normalize_domain
from mox.dane import generate_host_keys, load_host_key
from mox.dkim.keys import generate_key, key_file_name, selector_names, write_key
from mox.dns.expected import build_records, gather_facts
from mox.dns.resolver import DnsError, NotFound, Resolver, lookup_ips
from mox.dns.zone import render_zone
from mox.store import Store

__all__ = ["QuickstartError", "QuickstartResult", "quickstart"]

ANY_V4 = str(ipaddress.IPv4Address(0))
ANY_V6 = str(ipaddress.IPv6Address(0))
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class QuickstartError(Exception):
    """Something that stops the quickstart; nothing written is left behind."""


@dataclass
class QuickstartResult:
    config_path: Path
    account: str
    address: str
    password: str
    admin_password: str
    output: str
    created: list[Path] = field(default_factory=list)


@dataclass
class _Writer:
    """Creates files and remembers them, so a failure can remove them again."""

    base: Path
    created: list[Path] = field(default_factory=list)

    def new_dir(self, rel: str) -> Path:
        """Create a directory (and missing parents), remembering each one created."""
        path = self.base / rel
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for p in reversed(missing):
            p.mkdir()
            self.created.append(p)
        return path

    def write(self, rel: str, data: bytes | str, mode: int = 0o644) -> Path:
        path = self.base / rel
        self.new_dir(str(Path(rel).parent))
        raw = data.encode() if isinstance(data, str) else data
        with path.open("xb") as f:  # never overwrite
            path.chmod(mode)
            f.write(raw)
        self.created.append(path)
        return path

    def remember(self, paths: Sequence[Path]) -> None:
        self.created += list(paths)

    def undo(self) -> None:
        for path in reversed(self.created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def local_ips() -> list[str]:
    """Addresses on this machine's interfaces (from `ip -j addr`), without link-local ones."""
    if shutil.which("ip") is None:
        return []
    res = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return []
    out: list[str] = []
    for iface in json.loads(res.stdout or "[]"):
        for addr in iface.get("addr_info", []):
            if "local" not in addr:
                continue
            ip = ipaddress.ip_address(addr["local"])
            if not ip.is_link_local and not ip.is_multicast:
                out.append(str(ip))
    return out


def _is_local(ip: str) -> bool:
    """Whether this machine has the address (binding to it works)."""
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
    except OSError:
        return False
    return True


def _certificate(key_path: Path, names: list[str], when: datetime.datetime) -> tuple[bytes, bytes]:
    """A self-signed certificate and a CSR for the ECDSA host key, for all names."""
    key = load_host_key(key_path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise QuickstartError(f"{key_path}: expected an ECDSA host key")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(when - datetime.timedelta(minutes=5))
        .not_valid_after(when + datetime.timedelta(days=4 * 365))
        .add_extension(sans, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(sans, critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        csr.public_bytes(serialization.Encoding.PEM),
    )


def _config_doc(
    plan: _Plan, tls: dict[str, Any], selectors: dict[str, str]
) -> tomlkit.TOMLDocument:
    hostname, domain, account = plan.host, plan.domain, plan.account
    doc = tomlkit.document()
    doc.add(
        tomlkit.comment(f"mox config, written by `mox quickstart` at {plan.when:%Y-%m-%d %H:%M}.")
    )
    doc.add(tomlkit.comment("Check changes with `mox config check mox.toml`; every key is"))
    doc.add(tomlkit.comment("described by `mox config describe` and schemas/mox.schema.json."))
    doc.add("hostname", hostname)
    doc.add("data_dir", "data")
    doc.add("log_level", "info")
    doc.add("public_ips", plan.public_ips)
    doc.add("admin_password_file", "adminpasswd")
    doc.add("postmaster", account)
    public = tomlkit.table()
    public.add("ips", plan.listen_ips)
    public.add("tls", tls)
    public.add("smtp", {"enabled": True})
    public.add("submissions", {"enabled": True})
    public.add("imaps", {"enabled": True})
    public.add("http", {"enabled": True})
    public.add("https", {"enabled": True})
    listeners = tomlkit.table(is_super_table=True)
    listeners.add("public", public)
    doc.add("listeners", listeners)
    dom: dict[str, Any] = {}
    client_host = f"mail.{domain}"
    if client_host != hostname:
        dom["client_settings_domain"] = client_host
    dom["localpart_catchall_separators"] = ["+"]
    dom["dkim"] = {
        "sign": [next(iter(selectors))],
        "selectors": {sel: {"private_key_file": path} for sel, path in selectors.items()},
    }
    dom["dmarc"] = {"localpart": "dmarcreports", "account": account, "mailbox": "DMARC"}
    dom["tlsrpt"] = {"localpart": "tlsreports", "account": account, "mailbox": "TLSRPT"}
    dom["mta_sts"] = {
        "policy_id": plan.stamp,
        "mode": "enforce",
        "max_age": 86400,
        "mx": [hostname],
    }
    domains = tomlkit.table(is_super_table=True)
    domains.add(domain, dom)
    doc.add("domains", domains)
    acc: dict[str, Any] = {
        "domain": domain,
        "destinations": {plan.address: {}},
        "rejects_mailbox": "Rejects",
        "junk_filter": {
            "threshold": 0.95,
            "onegrams": True,
            "max_power": 0.01,
            "top_words": 10,
            "ignore_words": 0.1,
            "rare_words": 2,
        },
    }
    accounts = tomlkit.table(is_super_table=True)
    accounts.add(account, acc)
    doc.add("accounts", accounts)
    if plan.acme:
        acme = tomlkit.table(is_super_table=True)
        acme.add(
            "letsencrypt",
            {
                "directory_url": LETSENCRYPT,
                "contact_email": plan.address,
                "issuer_domain_name": "letsencrypt.org",
            },
        )
        doc.add("acme", acme)
    return doc


def _unit(base: Path, config: Path, user: str) -> str:
    return f"""# systemd unit for mox, written by `mox quickstart`.
# Install: systemctl enable {base / "mox.service"} && systemctl start mox.service
[Unit]
Description=mox mail server
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
WorkingDirectory={base}
ExecStart={sys.executable} -m mox serve --config {config}
Restart=always
RestartSec=5s
LimitNOFILE=15000
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={base}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


async def _dns_notes(
    resolver: Resolver, hostname: str, domain: str, ips: list[str]
) -> tuple[bool, list[str]]:
    """With a resolver: is the domain's zone DNSSEC-signed, and does the host name resolve."""
    notes: list[str] = []
    try:
        dnssec = (await resolver.query(domain, "DNSKEY")).authentic
    except DnsError:
        dnssec = False
    notes.append(
        f"DNSSEC: {domain} is signed and validated, so the DANE records are published."
        if dnssec
        else f"NOTE: {domain} is not DNSSEC-signed (or not validated): the DANE TLSA records "
        "are commented out. Sign the zone, then run `mox dns zone --dnssec`."
    )
    try:
        found, _ = await lookup_ips(resolver, hostname)
    except (NotFound, DnsError):
        found = []
    if not found:
        notes.append(f"WARNING: {hostname} does not resolve yet; publish its A/AAAA records.")
    elif ips and set(found) != set(ips):
        notes.append(f"WARNING: {hostname} resolves to {', '.join(found)}, not {', '.join(ips)}.")
    return dnssec, notes


LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class _Plan:
    """What the quickstart decided before it writes anything."""

    address: str
    account: str
    domain: str
    host: str
    public_ips: list[str]
    listen_ips: list[str]
    user: str
    acme: bool
    when: datetime.datetime

    @property
    def stamp(self) -> str:
        return self.when.strftime("%Y%m%dT%H%M%S")


def quickstart(
    address: str,
    directory: Path,
    *,
    hostname: str | None = None,
    ips: Sequence[str] = (),
    user: str = "mox",
    acme: bool = True,
    resolver: Resolver | None = None,
    now: datetime.datetime | None = None,
) -> QuickstartResult:
    """Write a complete installation into `directory`; raises QuickstartError.

    With `acme` (the default, as mox) certificates come from Let's Encrypt for the host keys;
    without, a self-signed certificate and a signing request for the host key are written.
    """
    localpart, at, domain_text = address.rpartition("@")
    if not at or not localpart:
        raise QuickstartError(f"expected an email address like you@example.com, got {address!r}")
    try:
        domain = normalize_domain(domain_text)
        host = normalize_domain(hostname) if hostname else None
        ip_list = [str(ipaddress.ip_address(ip)) for ip in ips]
    except ValueError as exc:
        raise QuickstartError(str(exc)) from None
    address = f"{localpart}@{domain}"
    lines: list[str] = []
    say = lines.append
    account = localpart if _ACCOUNT_RE.match(localpart) else "mox"
    if account != localpart:
        say(f"NOTE: the local part {localpart!r} is not a valid account name; using {account!r}.")
    if host is None:
        fqdn = socket.getfqdn().lower()
        if "." in fqdn and not fqdn.startswith("localhost"):
            host = fqdn
        else:
            host = f"mail.{domain}"
            say(f"WARNING: this machine's name is not a full host name; using {host}.")
    if not ip_list:
        found = [ip for ip in local_ips() if ipaddress.ip_address(ip).is_global]
        if found:
            ip_list = found
        else:
            say("WARNING: no public IP found on this machine; give them with --ip.")
    listen = [ip for ip in ip_list if _is_local(ip)]
    if ip_list and len(listen) < len(ip_list):
        say(
            "NOTE: some IPs are not on this machine (NAT?); listening on all addresses; "
            "the IPs are still used for DNS."
        )
        listen = []
    if not listen:
        # NAT or no IP known: all addresses (the public IPs still go into DNS).
        listen = [ANY_V4, ANY_V6] if socket.has_ipv6 else [ANY_V4]
    base = directory.absolute()
    config_path = base / "mox.toml"
    if config_path.exists():
        raise QuickstartError(f"{config_path} exists; not overwriting")
    when = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    plan = _Plan(address, account, domain, host, ip_list, listen, user, acme, when)
    w = _Writer(base)
    try:
        return _write_all(w, plan, lines, resolver)
    except BaseException:
        w.undo()
        raise


def _write_all(
    w: _Writer, plan: _Plan, lines: list[str], resolver: Resolver | None
) -> QuickstartResult:
    base = w.base
    host, domain, when = plan.host, plan.domain, plan.when
    w.new_dir(".")
    admin_password = secrets.token_urlsafe(12)
    w.write("adminpasswd", derive_credentials(admin_password).to_text() + "\n", 0o600)
    w.new_dir("hostkeys")
    host_keys = generate_host_keys(base / "hostkeys", host, when)
    w.remember(host_keys)
    tls: dict[str, Any] = {}
    if plan.acme:
        tls["acme"] = "letsencrypt"
    else:
        client_host = f"mail.{domain}"
        names = [host, client_host, f"mta-sts.{domain}", f"autoconfig.{domain}"]
        cert, csr = _certificate(host_keys[0], list(dict.fromkeys(names)), when)
        w.write(f"tls/{host}.selfsigned.crt.pem", cert)
        w.write(f"tls/{host}.csr.pem", csr)
        tls["cert_file"] = f"tls/{host}.selfsigned.crt.pem"
        tls["key_file"] = str(host_keys[0].relative_to(base))
    tls["host_private_key_files"] = [str(p.relative_to(base)) for p in host_keys]
    selectors: dict[str, str] = {}
    w.new_dir("dkim")
    for sel in selector_names(when.date()):
        rel = f"dkim/{key_file_name(sel, domain, when, 'rsa2048')}"
        write_key(base / rel, generate_key("rsa2048"))
        w.remember([base / rel])
        selectors[sel] = rel
    text = tomlkit.dumps(_config_doc(plan, tls, selectors))
    config_path = w.write("mox.toml", text)
    try:
        loaded = parse_config(tomlkit.parse(text).unwrap(), config_path)
    except ConfigError as exc:
        raise QuickstartError("generated config does not check:\n" + str(exc)) from None
    password = secrets.token_urlsafe(12)
    data_existed = loaded.data_dir.exists()
    asyncio.run(_set_password(loaded, plan.account, password))
    if not data_existed:
        w.created.append(loaded.data_dir)
    dnssec = False
    if resolver is not None:
        dnssec, notes = asyncio.run(_dns_notes(resolver, host, domain, plan.public_ips))
        lines += notes
    w.write("mox.service", _unit(base, config_path, plan.user))
    zone = render_zone(build_records(gather_facts(loaded, dnssec=dnssec)))
    _report(lines, loaded, plan, password, admin_password, resolver, zone)
    output = "\n".join(lines) + "\n"
    w.write("quickstart.log", output, 0o600)
    return QuickstartResult(
        config_path, plan.account, plan.address, password, admin_password, output, list(w.created)
    )


async def _set_password(loaded: LoadedConfig, account: str, password: str) -> None:
    async with Store(loaded.data_dir) as store:
        await store.account(account).set_credentials(derive_credentials(password))


def _report(
    lines: list[str],
    loaded: LoadedConfig,
    plan: _Plan,
    password: str,
    admin_password: str,
    resolver: Resolver | None,
    zone: str,
) -> None:
    say = lines.append
    cfg = loaded.config
    host, domain, address, base = plan.host, plan.domain, plan.address, loaded.base_dir
    client_host = cfg.domains[domain].client_settings_domain or host
    say(f"Config written to {loaded.path}; it passes `mox config check`.")
    say("")
    say(f"Admin password (for the admin pages): {admin_password}")
    say(f"IMAP, SMTP submission and HTTP account password for {address}: {password}")
    say("")
    say("Mail client settings (username: the full email address):")
    say(f"  {'Protocol':<11}{'Host':<32}{'Port':<6}{'Listener':<10}Note")
    say(f"  {'IMAP':<11}{client_host:<32}{'993':<6}{'public':<10}with TLS (RFC 8314)")
    say(f"  {'Submission':<11}{client_host:<32}{'465':<6}{'public':<10}with TLS (RFC 8314)")
    say("  Choose the strongest login method your client offers, SCRAM-SHA-256-PLUS first.")
    say("")
    if plan.acme:
        say("TLS: certificates come from Let's Encrypt (ACME) for the host keys in hostkeys/, so")
        say("the DANE TLSA records stay valid across renewals. Ports 80 or 443 must be reachable.")
    else:
        say("TLS: the listener uses a self-signed certificate for the DANE host key")
        say(f"(tls/{host}.selfsigned.crt.pem). Senders that verify with DANE accept it; for")
        say("everyone else get a certificate from a CA for the request in")
        say(f"tls/{host}.csr.pem (same key, so the TLSA records stay valid) and replace the file.")
    say("")
    say("Checks skipped, as mox would do them online:")
    if resolver is None:
        say("  - DNSSEC support of the resolver, DNS and reverse DNS of the host name")
        say("    (no --resolver given: this quickstart made no DNS lookups)")
    say("  - outgoing port 25 reachability and the domain's registration age (no internet access)")
    say("  - DNS block lists for the IPs (sbl.spamhaus.org, bl.spamcop.net)")
    say("Run `mox dnscheck` once the records below are published.")
    say("")
    say("Add these DNS records to your zone (also: `mox dns zone`):")
    say("")
    lines += zone.rstrip("\n").split("\n")
    say("")
    say("If you move an existing mail setup, change the MX records last.")
    say("")
    say("Next steps:")
    say(f"  1. Create the user: useradd --system --home-dir {base} mox; chown -R mox: {base}")
    say(f"  2. systemctl enable {base / 'mox.service'} && systemctl start mox.service")
    say("  3. journalctl -f -u mox.service")
    say(f"  4. Publish the DNS records, then: mox dnscheck --config {loaded.path}")
    say("The web interface (account, admin, webmail) arrives with the HTTP listener.")
