"""Certificate lifecycle with ACME (RFC 8555): account, orders, challenges, renewal, live swap.

Implementation notes:
- The `acme` library is synchronous (requests); every exchange with the CA runs in a worker
  thread, while our listeners answer the challenges on the event loop: http-01 tokens in a dict
  the HTTP app reads, tls-alpn-01 certificates in the listener's `ListenerTls`.
- The certificate key is the configured host key (`tls.host_private_key_files`, the first ECDSA
  one, else the first) or one generated once and kept in the data dir: it never changes across
  renewals, so DANE TLSA `3 1 1` records stay valid (RFC 7671 §5.1).
- Renewal when two thirds of the lifetime have passed (as mox/Let's Encrypt advice), with up to an
  hour of jitter; failures retry with exponential backoff (1 minute doubling, at most 6 hours).
- Files: data/acme/<provider>/account.key, account.json, and <listener>/cert.pem (+ key.pem).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acme import challenges, client, crypto_util, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.jwk import JWKRSA

from mox.acme.challenges import TLSALPN01, tls_alpn_cert
from mox.config.model import Acme
from mox.tls.certs import ListenerTls

__all__ = ["AcmeManager", "HttpTokens"]

log = logging.getLogger(__name__)

HttpTokens = dict[str, str]  # http-01 token -> key authorization (RFC 8555 §8.3)
MAX_BACKOFF = 6 * 3600.0


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def _load_or_create_key(path: Path, kind: str) -> bytes:
    if path.exists():
        return path.read_bytes()
    key: Any
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(path, pem)
    return pem


def renewal_delay(cert: x509.Certificate, now: datetime.datetime, jitter: float) -> float:
    """Seconds until renewal is due: 2/3 of the lifetime, minus up to `jitter` seconds."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    due = start + (end - start) * 2 / 3
    seconds = (due - now).total_seconds() - jitter
    return max(0.0, seconds)


@dataclass
class AcmeManager:
    """Keeps one listener's certificate for `names` valid, from one ACME provider."""

    provider_name: str
    provider: Acme
    names: list[str]
    directory: Path  # data/acme/<provider>
    listener: str
    tls: ListenerTls
    http_tokens: HttpTokens
    host_key_files: list[Path] = field(default_factory=list)
    resolve: Callable[[Path], Path] = lambda p: p
    _task: asyncio.Task[None] | None = None
    renewals: int = 0  # for tests and metrics

    @property
    def cert_file(self) -> Path:
        return self.directory / self.listener / "cert.pem"

    def key_file(self) -> Path:
        for path in self.host_key_files:
            pem = self.resolve(path).read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return self.resolve(path)
        if self.host_key_files:
            return self.resolve(self.host_key_files[0])
        path = self.directory / self.listener / "key.pem"
        _load_or_create_key(path, "ec")
        return path

    def _load_existing(self) -> x509.Certificate | None:
        if not self.cert_file.exists():
            return None
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if set(san.get_values_for_type(x509.DNSName)) != set(self.names):
            log.info("certificate names differ from config, ordering a new one")
            return None
        if cert.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
            return None
        self.tls.load_files(self.cert_file, self.key_file())
        return cert

    async def start(self) -> None:
        """Use a stored certificate or obtain one now, then keep it renewed in the background."""
        cert = self._load_existing()
        if cert is None:
            cert = await self.obtain()
        self._task = asyncio.create_task(self._renew_loop(cert), name=f"acme-{self.listener}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _renew_loop(self, cert: x509.Certificate) -> None:
        backoff = 60.0
        while True:
            now = datetime.datetime.now(datetime.UTC)
            await asyncio.sleep(renewal_delay(cert, now, random.uniform(0, 3600)))
            try:
                cert = await self.obtain()
                backoff = 60.0
            except Exception:
                log.exception("certificate renewal failed", extra={"retry_in": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def obtain(self) -> x509.Certificate:
        """Order a certificate now (also used to force a renewal) and swap it in."""
        key_file = self.key_file()
        fullchain = await asyncio.to_thread(self._order, key_file.read_bytes())
        _write_private(self.cert_file, fullchain.encode())
        self.tls.load_files(self.cert_file, key_file)
        self.renewals += 1
        cert = x509.load_pem_x509_certificate(fullchain.encode())
        log.info(
            "certificate obtained",
            extra={"names": self.names, "not_after": cert.not_valid_after_utc.isoformat()},
        )
        return cert

    # --- in a worker thread ---

    def _client(self) -> tuple[client.ClientV2, JWKRSA]:
        key_pem = _load_or_create_key(self.directory / "account.key", "rsa")
        key = serialization.load_pem_private_key(key_pem, password=None)
        jwk = JWKRSA(key=key)
        verify: bool | str = (
            str(self.resolve(self.provider.ca_file)) if self.provider.ca_file else True
        )
        # requests (under acme) takes a CA bundle path for verify as well as a bool.
        net = client.ClientNetwork(jwk, user_agent="mox", verify_ssl=verify)  # type: ignore[arg-type]
        directory = client.ClientV2.get_directory(self.provider.directory_url, net)
        acme = client.ClientV2(directory, net)
        regr_file = self.directory / "account.json"
        if regr_file.exists():
            net.account = messages.RegistrationResource.json_loads(regr_file.read_text())
        else:
            # RFC 8555 §7.3: create the account, agreeing to the terms of service.
            regr = acme.new_account(
                messages.NewRegistration.from_data(
                    email=self.provider.contact_email, terms_of_service_agreed=True
                )
            )
            _write_private(regr_file, regr.json_dumps().encode())
        return acme, jwk

    def _order(self, key_pem: bytes) -> str:
        acme, jwk = self._client()
        csr = crypto_util.make_csr(key_pem, self.names)
        order = acme.new_order(csr)  # RFC 8555 §7.4
        cleanups: list[Callable[[], None]] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue
                cleanups.append(self._answer(acme, jwk, authz))
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=120)  # noqa: DTZ005 (acme compares naive local times)
            done = acme.poll_and_finalize(order, deadline)
        finally:
            for cleanup in cleanups:
                cleanup()
        return str(done.fullchain_pem)

    def _answer(
        self, acme: client.ClientV2, jwk: JWKRSA, authz: messages.AuthorizationResource
    ) -> Callable[[], None]:
        name = authz.body.identifier.value
        offered = {c.chall.typ: c for c in authz.body.challenges}
        for typ in self.provider.challenges:
            challb = offered.get(typ)
            if challb is None:
                continue
            chall = challb.chall
            if isinstance(chall, TLSALPN01):
                digest = chall.validation(jwk)
                cert_pem, key_pem = tls_alpn_cert(name, digest)
                self.tls.add_alpn_challenge(name, cert_pem, key_pem)
                acme.answer_challenge(challb, chall.response(jwk))
                return lambda: self.tls.remove_alpn_challenge(name)
            if isinstance(chall, challenges.HTTP01):
                response, validation = chall.response_and_validation(jwk)
                token = chall.encode("token")
                self.http_tokens[token] = validation
                acme.answer_challenge(challb, response)

                def forget(token: str = token) -> None:
                    self.http_tokens.pop(token, None)

                return forget
        raise RuntimeError(
            f"ACME offers no usable challenge for {name}: "
            f"{sorted(offered)} offered, {self.provider.challenges} configured"
        )
