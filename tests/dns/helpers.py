"""Shared by the DNS and quickstart tests: an installation made by quickstart, a test CA."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from mox.config.load import LoadedConfig, load_config
from mox.dane import load_host_key
from mox.dns.expected import RecordSpec
from mox.dns.resolver import MockResolver, reverse_name
from mox.quickstart import QuickstartResult, quickstart

NOW = datetime.datetime(2025, 8, 19, 20, 39, 50, tzinfo=datetime.UTC)
HOST = "mail.example.test"
DOMAIN = "example.test"
IP = "127.0.0.2"  # all of 127.0.0.0/8 is on lo (Linux), so servers can bind it


def make_installation(directory: Path) -> QuickstartResult:
    return quickstart(f"alice@{DOMAIN}", directory, hostname=HOST, ips=[IP], now=NOW)


def loaded(result: QuickstartResult) -> LoadedConfig:
    return load_config(result.config_path)


class CA:
    """A throwaway certificate authority that can certify a given key (our DANE host key)."""

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mox test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem_file = directory / "ca.pem"
        self.pem_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, key_file: Path, names: list[str]) -> bytes:
        """A leaf certificate (PEM) for the private key in key_file."""
        key = load_host_key(key_file)
        issuer: CertificateIssuerPrivateKeyTypes = self.key
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(issuer, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def published(specs: list[RecordSpec], *, authentic: bool = True) -> MockResolver:
    """A MockResolver that serves exactly the expected records, plus the PTR of our IP."""
    records: dict[tuple[str, str], list[str]] = {}
    for spec in specs:
        if not spec.commented_out:
            records.setdefault((spec.name, spec.rtype), []).append(spec.value)
    records[(DOMAIN, "SOA")] = [f"{HOST}. hostmaster.{DOMAIN}. 1 7200 3600 1209600 300"]
    records[(reverse_name(IP), "PTR")] = [f"{HOST}."]
    return MockResolver(records, authentic=authentic)
