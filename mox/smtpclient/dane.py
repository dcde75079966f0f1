"""DANE verification of an SMTP server certificate: RFC 6698 (TLSA), RFC 7672 (SMTP), RFC 7671.

We check DANE-EE(3) records against the leaf certificate (full certificate or SPKI, exact,
SHA-256 or SHA-512). PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672 §3.1.3), and
DANE-TA(2) needs the peer's chain, which Python 3.11's ssl module does not expose, so those count
as unusable here too: with only unusable records, TLS is still required but not authenticated
(RFC 7672 §2.2).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mox.dns.records import Tlsa

__all__ = ["usable", "verify_leaf"]


def usable(records: list[Tlsa]) -> list[Tlsa]:
    """The records we can verify: DANE-EE with a known selector and matching type."""
    return [
        r for r in records if r.usage == 3 and r.selector in (0, 1) and r.matching_type in (0, 1, 2)
    ]


def verify_leaf(records: list[Tlsa], leaf_der: bytes) -> bool:
    """Whether any usable record matches the leaf certificate (RFC 6698 §2.1)."""
    cert = x509.load_der_x509_certificate(leaf_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for r in usable(records):
        data = leaf_der if r.selector == 0 else spki  # RFC 6698 §2.1.2
        if r.matching_type == 1:  # RFC 6698 §2.1.3
            data = hashlib.sha256(data).digest()
        elif r.matching_type == 2:
            data = hashlib.sha512(data).digest()
        if data == r.data:
            return True
    return False
