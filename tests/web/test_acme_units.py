"""Renewal timing and the tls-alpn-01 challenge certificate (RFC 8737 §3)."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mox.acme.challenges import ACME_IDENTIFIER_OID, tls_alpn_cert
from mox.acme.manager import renewal_delay
from mox.config.load import parse_config
from mox.server.run import acme_names
from tests.conftest import minimal_config


def cert_valid(start: datetime.datetime, days: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def test_renewal_at_two_thirds_of_lifetime() -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = cert_valid(start, 90)
    assert renewal_delay(cert, start, 0) == 60 * 86400
    assert renewal_delay(cert, start, 3600) == 60 * 86400 - 3600  # jitter makes it earlier
    assert renewal_delay(cert, start + datetime.timedelta(days=61), 0) == 0  # overdue: now


def test_alpn_challenge_certificate() -> None:
    digest = hashlib.sha256(b"token.thumbprint").digest()
    cert_pem, _ = tls_alpn_cert("mail.example.test", digest)
    cert = x509.load_pem_x509_certificate(cert_pem)
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical  # RFC 8737 §3: MUST be critical
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    assert ext.value.value == b"\x04\x20" + digest
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.example.test"]


def test_acme_names_from_config(tmp_path: Path) -> None:
    data = minimal_config()
    data["domains"]["other.test"] = {"mta_sts": {"policy_id": "1"}}
    data["acme"] = {"le": {"directory_url": "https://acme.example/dir", "contact_email": "a@b.c"}}
    data["listeners"]["internal"]["https"] = {"enabled": True, "port": 8443}
    data["listeners"]["internal"]["tls"] = {"acme": "le"}
    loaded = parse_config(data, tmp_path / "mox.toml")
    names = acme_names(loaded, loaded.config.listeners["internal"])
    assert names == [
        "mail.example.test",
        "autoconfig.example.test",
        "mta-sts.other.test",
        "autoconfig.other.test",
    ]
