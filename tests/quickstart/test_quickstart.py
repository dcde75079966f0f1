"""`mox quickstart`: a complete, checked installation, made offline, never overwriting."""

from __future__ import annotations

import asyncio
import datetime
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import dns.asyncresolver
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

import mox.quickstart
from mox.auth.password import Credentials, verify_password
from mox.cli import app
from mox.config.load import load_config
from mox.dane import load_host_key
from mox.dkim.keys import load_private_key
from mox.dns.resolver import MockResolver
from mox.quickstart import QuickstartError, quickstart
from mox.store import Store
from tests.conftest import MOX

runner = CliRunner()
ADDRESS = "alice@example.test"
HOST = "mail.example.test"
PUBLIC_IP = "192.0.2.10"  # documentation address: not on this machine, so NAT handling applies


def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any DNS lookup or name resolution fail loudly, and record attempts."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise AssertionError("quickstart must not look anything up offline")

    monkeypatch.setattr(dns.asyncresolver.Resolver, "resolve", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    return attempts


def run(directory: Path, *extra: str) -> Any:
    return runner.invoke(
        app,
        [
            "quickstart",
            ADDRESS,
            "--hostname",
            HOST,
            "--ip",
            PUBLIC_IP,
            "--dir",
            str(directory),
            *extra,
        ],
    )


def test_writes_a_complete_checked_installation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mox_env: dict[str, str]
) -> None:
    attempts = no_network(monkeypatch)
    directory = tmp_path / "mox"
    result = run(directory)
    assert result.exit_code == 0, result.output
    assert attempts == []
    out = result.output
    year = datetime.datetime.now(datetime.UTC).year

    # The config passes `mox config check`, run as a real command.
    check = subprocess.run(
        [*MOX, "config", "check", str(directory / "mox.toml")],
        capture_output=True,
        text=True,
        env=mox_env,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "ok (1 domains, 1 accounts, 1 listeners)" in check.stdout

    loaded = load_config(directory / "mox.toml")
    cfg = loaded.config
    assert cfg.hostname == HOST
    assert cfg.public_ips == [PUBLIC_IP]
    assert cfg.listeners["public"].ips[0] == mox.quickstart.ANY_V4  # IP not local: NAT
    assert "NOTE: some IPs are not on this machine" in out
    dom = cfg.domains["example.test"]
    assert list(dom.dkim.selectors) == [f"{year}a", f"{year}b"]
    assert dom.dkim.sign == [f"{year}a"]
    for sel in dom.dkim.selectors.values():
        path = loaded.resolve(sel.private_key_file)
        key = load_private_key(path)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == 2048
        assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tls = cfg.listeners["public"].tls
    assert tls is not None
    assert tls.acme == "letsencrypt"  # as mox: certificates from Let's Encrypt
    assert cfg.acme["letsencrypt"].contact_email == ADDRESS
    assert cfg.acme["letsencrypt"].issuer_domain_name == "letsencrypt.org"
    kinds = [type(load_host_key(loaded.resolve(p))) for p in tls.host_private_key_files]
    assert len(kinds) == 2
    assert issubclass(kinds[0], ec.EllipticCurvePrivateKey)
    assert issubclass(kinds[1], rsa.RSAPrivateKey)
    assert dom.mta_sts is not None
    assert dom.mta_sts.mode == "enforce"

    # Passwords: printed once, stored only as derived secrets.
    password = out.split(f"account password for {ADDRESS}: ")[1].split()[0]
    admin = out.split("Admin password (for the admin pages): ")[1].split()[0]
    admin_file = directory / "adminpasswd"
    assert stat.S_IMODE(admin_file.stat().st_mode) == 0o600
    assert admin not in admin_file.read_text()
    assert verify_password(Credentials.from_text(admin_file.read_text()), admin)

    async def stored() -> Credentials | None:
        async with Store(loaded.data_dir) as store:
            return store.account("alice").get_credentials()

    creds = asyncio.run(stored())
    assert creds is not None
    assert verify_password(creds, password)
    assert not verify_password(creds, admin)

    unit = (directory / "mox.service").read_text()
    assert "ExecStart=" in unit
    assert f"serve --config {directory / 'mox.toml'}" in unit
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in unit

    # Printed: client settings, the zone, skipped checks and next steps; all also in the log.
    assert f"IMAP       {'mail.example.test':<32}993" in out
    assert f"Submission {'mail.example.test':<32}465" in out
    assert f"example.test.                   MX 10 {HOST}." in out
    assert f'TXT "v=spf1 ip4:{PUBLIC_IP} mx ~all"' in out
    assert ";; _25._tcp.mail.example.test." in out  # no resolver: zone not known to be signed
    assert 'example.test.                   CAA 0 issue "letsencrypt.org"' in out
    assert "this quickstart made no DNS lookups" in out
    assert f"systemctl enable {directory / 'mox.service'}" in out
    assert (directory / "quickstart.log").read_text() == out


def test_never_overwrites(tmp_path: Path) -> None:
    directory = tmp_path / "mox"
    assert run(directory).exit_code == 0
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    again = run(directory)
    assert again.exit_code == 1
    assert "exists; not overwriting" in again.output
    after = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    assert after == before


def test_failure_removes_what_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_unit(*args: Any) -> str:
        raise QuickstartError("unit cannot be written")

    monkeypatch.setattr(mox.quickstart, "_unit", broken_unit)
    directory = tmp_path / "mox"
    result = run(directory)
    assert result.exit_code == 1
    assert "unit cannot be written" in result.output
    assert not directory.exists()
    # In an existing directory, the directory and unrelated files stay.
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    assert run(directory).exit_code == 1
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_with_a_resolver_signed_zone_gets_tlsa(tmp_path: Path) -> None:
    res = MockResolver(
        {
            ("example.test", "DNSKEY"): ["257 3 13 AAAA"],
            (HOST, "A"): [PUBLIC_IP],
        },
        authentic=True,
    )
    result = quickstart(ADDRESS, tmp_path / "mox", hostname=HOST, ips=[PUBLIC_IP], resolver=res)
    assert "DNSSEC: example.test is signed and validated" in result.output
    tlsa = [line for line in result.output.splitlines() if "TLSA 3 1 1" in line]
    assert len(tlsa) == 2
    assert all(line.startswith("_25._tcp.mail.example.test.") for line in tlsa)
    assert ("example.test", "DNSKEY") in res.queries


def test_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quickstart", "not-an-address", "--dir", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "expected an email address" in result.output
    with pytest.raises(QuickstartError, match="IPv4 or IPv6"):
        quickstart(ADDRESS, tmp_path / "b", hostname=HOST, ips=["300.1.1.1"])
    assert not (tmp_path / "b").exists()
    odd = quickstart("jöhn@example.test", tmp_path / "c", hostname=HOST, ips=[PUBLIC_IP])
    assert odd.account == "mox"
    assert "is not a valid account name" in odd.output


def test_without_acme_a_self_signed_certificate_for_the_host_key(tmp_path: Path) -> None:
    directory = tmp_path / "mox"
    result = run(directory, "--no-acme")
    assert result.exit_code == 0, result.output
    loaded = load_config(directory / "mox.toml")
    tls = loaded.config.listeners["public"].tls
    assert tls is not None
    assert tls.acme is None
    assert loaded.config.acme == {}
    assert tls.cert_file is not None
    assert tls.key_file == tls.host_private_key_files[0]
    cert = x509.load_pem_x509_certificate(loaded.resolve(tls.cert_file).read_bytes())
    key = load_host_key(loaded.resolve(tls.key_file))
    assert cert.public_key() == key.public_key()  # DANE 3 1 1 matches the served certificate
    csr = x509.load_pem_x509_csr((directory / f"tls/{HOST}.csr.pem").read_bytes())
    assert csr.is_signature_valid
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {
        HOST,
        "mta-sts.example.test",
        "autoconfig.example.test",
    }
    assert "self-signed certificate for the DANE host key" in result.output
