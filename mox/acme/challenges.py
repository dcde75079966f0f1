"""ACME challenges answered by our own listeners: http-01 (RFC 8555 §8.3) and tls-alpn-01
(RFC 8737), which the `acme` library no longer ships, so its types are registered here.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from josepy.jwk import JWK

__all__ = ["ACME_IDENTIFIER_OID", "TLSALPN01", "TLSALPN01Response", "tls_alpn_cert"]

# RFC 8737 §3: id-pe-acmeIdentifier.
ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """RFC 8737 §3: the response to tls-alpn-01 is an empty JSON object."""

    typ = "tls-alpn-01"

    def to_partial_json(self) -> dict[str, Any]:
        return {}


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: JWK, **unused_kwargs: Any) -> bytes:
        """SHA-256 of the key authorization, for the acmeIdentifier extension (RFC 8737 §3)."""
        return hashlib.sha256(self.key_authorization(account_key).encode()).digest()


def tls_alpn_cert(name: str, digest: bytes) -> tuple[bytes, bytes]:
    """A self-signed certificate for `name` with the critical acmeIdentifier extension holding
    the key authorization digest (RFC 8737 §3); returns (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    der = b"\x04\x20" + digest  # DER OCTET STRING of the 32-byte SHA-256 value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, der), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
