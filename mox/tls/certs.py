"""The TLS certificate of a listener, shared by its SMTP, IMAP and HTTPS services, swappable live.

One `ListenerTls` holds one server SSLContext. A new certificate (ACME renewal, SIGHUP reload of
files) is loaded into that same context, so new connections get it at once while open ones keep
theirs: no restart. For tls-alpn-01 (RFC 8737) an SNI callback hands a connection for a name with
a pending challenge a separate context that offers only ALPN `acme-tls/1` and the challenge
certificate; Python's ssl module does not expose the client's ALPN list at SNI time, so during the
seconds a challenge is pending, ordinary clients of that exact name would also get it (documented
in docs/quirks.md).
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path

from cryptography import x509

__all__ = ["ACME_TLS_ALPN", "ListenerTls"]

log = logging.getLogger(__name__)

ACME_TLS_ALPN = "acme-tls/1"  # RFC 8737 §6.2


def _server_context(min_version: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # RFC 8996: nothing below TLS 1.2.
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    )
    return ctx


class ListenerTls:
    def __init__(self, min_version: str = "TLSv1.2") -> None:
        self.min_version = min_version
        self.context = _server_context(min_version)
        self.context.sni_callback = self._sni
        self._challenges: dict[str, ssl.SSLContext] = {}
        self.certificate: x509.Certificate | None = None
        self.source: tuple[Path, Path] | None = None  # files to reload on SIGHUP

    @property
    def ready(self) -> bool:
        return self.certificate is not None

    def load_files(self, cert_file: Path, key_file: Path) -> None:
        """Load (or reload) the certificate chain and key from files."""
        self.context.load_cert_chain(str(cert_file), str(key_file))
        self.certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        self.source = (cert_file, key_file)
        log.info(
            "certificate loaded",
            extra={
                "subject": self.certificate.subject.rfc4514_string(),
                "not_after": self.certificate.not_valid_after_utc.isoformat(),
            },
        )

    def reload(self) -> bool:
        """Reload from the files last loaded (SIGHUP); False when there are none."""
        if self.source is None:
            return False
        self.load_files(*self.source)
        return True

    def add_alpn_challenge(self, name: str, cert_pem: bytes, key_pem: bytes) -> None:
        """Answer tls-alpn-01 for `name` with this challenge certificate (RFC 8737 §3)."""
        ctx = _server_context("TLSv1.2")
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            ctx.load_cert_chain(str(cert), str(key))
        ctx.set_alpn_protocols([ACME_TLS_ALPN])  # RFC 8737 §3: only acme-tls/1 is negotiated
        self._challenges[name.lower()] = ctx

    def remove_alpn_challenge(self, name: str) -> None:
        self._challenges.pop(name.lower(), None)

    def _sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, ctx: ssl.SSLContext
    ) -> None:
        if server_name:
            challenge = self._challenges.get(server_name.lower().rstrip("."))
            if challenge is not None:
                sslobj.context = challenge
