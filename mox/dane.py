"""DANE for SMTP (RFC 7672, RFC 6698): our host keys and the TLSA records that pin them.

The host keys (ECDSA P-256 and RSA-2048, as mox) stay the same when certificates are renewed, so the
`_25._tcp.<host>` TLSA records (`3 1 1`: DANE-EE, SubjectPublicKeyInfo, SHA-256; RFC 7672 §3.1.1)
never need to change. Verifying remote servers' TLSA records belongs to the outgoing queue.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from mox.dns.records import Tlsa

__all__ = ["generate_host_keys", "load_host_key", "spki_sha256", "tlsa_for_key"]

# RFC 7672 §3.1.1: DANE-EE(3) SPKI(1) SHA2-256(1) is the recommended form for SMTP.
USAGE_DANE_EE = 3
SELECTOR_SPKI = 1
MATCHING_SHA256 = 1


def spki_sha256(pub: PublicKeyTypes) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (RFC 6698 §2.1.2 selector 1, §2.1.3 type 1)."""
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def tlsa_for_key(pub: PublicKeyTypes) -> Tlsa:
    """The `3 1 1` TLSA record for a public key."""
    return Tlsa(USAGE_DANE_EE, SELECTOR_SPKI, MATCHING_SHA256, spki_sha256(pub))


def load_host_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"{path}: host keys must be ECDSA or RSA")
    return key


def generate_host_keys(directory: Path, hostname: str, when: datetime.datetime) -> list[Path]:
    """Write a new ECDSA P-256 and RSA-2048 key, PKCS#8 PEM, mode 0600, named as mox does:
    `<host>.<YYYYMMDDTHHMMSS>.{ecdsap256,rsa2048}.privatekey.pkcs8.pem`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = when.strftime("%Y%m%dT%H%M%S")
    keys: list[tuple[str, PrivateKeyTypes]] = [
        ("ecdsap256", ec.generate_private_key(ec.SECP256R1())),
        ("rsa2048", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ]
    paths = []
    for kind, key in keys:
        path = directory / f"{hostname}.{stamp}.{kind}.privatekey.pkcs8.pem"
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with path.open("xb") as f:
            path.chmod(0o600)
            f.write(data)
        paths.append(path)
    return paths
