"""DKIM keys (RFC 6376 §3.6, RFC 8463): generation as PKCS#8 PEM, loading, the DNS key record.

Keys are files beside the config, never inside it. As mox, a domain gets two RSA-2048 selectors
named `<year>a` and `<year>b` (the first signs, the second is ready for rotation); ed25519 keys
(RFC 8463) are supported as well. RSA keys of 2048 bits follow RFC 8301 §3.2.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mox.dns.records import DkimKey

__all__ = [
    "DkimPrivateKey",
    "KeyKind",
    "generate_key",
    "key_file_name",
    "load_private_key",
    "public_key_bytes",
    "public_record",
    "selector_names",
    "write_key",
]

DkimPrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KeyKind = Literal["rsa2048", "ed25519"]


def generate_key(kind: KeyKind = "rsa2048") -> DkimPrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()  # RFC 8463 §3
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)  # RFC 8301 §3.2


def pem(key: DkimPrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_key(path: Path, key: DkimPrivateKey) -> None:
    """Write the key as PKCS#8 PEM, readable by the owner only; never overwrites a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as f:
        path.chmod(0o600)
        f.write(pem(key))


def load_private_key(path: Path) -> DkimPrivateKey:
    """A PEM private key (PKCS#8 or PKCS#1); ValueError for other key types."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError(f"{path}: DKIM keys must be RSA or ed25519")
    return key


def public_key_bytes(key: DkimPrivateKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    """What goes in p=: RSA SubjectPublicKeyInfo DER (RFC 6376 §3.6.1), ed25519 raw 32 bytes
    (RFC 8463 §4)."""
    pub = (
        key.public_key() if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)) else key
    )
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_record(key: DkimPrivateKey) -> DkimKey:
    """The DNS key record for a private key, as mox writes it (`v=DKIM1;h=sha256;p=...`)."""
    kind = "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa"
    return DkimKey(public_key=public_key_bytes(key), key_type=kind, hashes=("sha256",))


def same_public_key(record: DkimKey, key: DkimPrivateKey) -> bool:
    """Whether a published key record holds the public half of `key`.

    RSA keys are compared by modulus and exponent, so a record with a PKCS#1 RSAPublicKey
    instead of SubjectPublicKeyInfo still matches.
    """
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return record.key_type == "ed25519" and record.public_key == public_key_bytes(key)
    if record.key_type != "rsa":
        return False
    try:
        published = serialization.load_der_public_key(record.public_key)
    except ValueError:
        return False
    if not isinstance(published, rsa.RSAPublicKey):
        return False
    return published.public_numbers() == key.public_key().public_numbers()


def selector_names(when: datetime.date) -> tuple[str, str]:
    """`<year>a` and `<year>b`, as mox's quickstart names them."""
    return f"{when.year}a", f"{when.year}b"


def key_file_name(selector: str, domain: str, when: datetime.datetime, kind: KeyKind) -> str:
    """mox's file name for a DKIM key:
    `<selector>._domainkey.<domain>.<YYYYMMDDTHHMMSS>.<kind>.privatekey.pkcs8.pem`."""
    stamp = when.strftime("%Y%m%dT%H%M%S")
    return f"{selector}._domainkey.{domain}.{stamp}.{kind}.privatekey.pkcs8.pem"
