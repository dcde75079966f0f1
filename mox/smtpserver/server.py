"""SMTP listeners on aiosmtpd: 25 (delivery), 587 (submission, STARTTLS), 465 (implicit TLS).

RFC 5321, RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 4616 (PLAIN), RFC 8314 (implicit TLS).

Implementation notes:
- aiosmtpd carries the transport and command parsing; `MoxSMTP` only replaces its AUTH mechanisms
  so the password check is our asynchronous `Authenticator` (slow hash, per-IP throttling), and
  everything else is decided in `mox.smtpserver.handler`.
- aiosmtpd (>= 1.4.6) discards input pipelined after STARTTLS, so plaintext cannot be injected into
  the TLS session.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import warnings
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from mox.auth.login import Authenticator
from mox.config.load import LoadedConfig
from mox.smtpserver.handler import Handler, SmtpKind
from mox.store import Store

__all__ = ["start_smtp_server"]

log = logging.getLogger(__name__)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


class MoxSMTP(SMTP):
    """aiosmtpd's SMTP with our AUTH mechanisms and a quieter identity."""

    AuthLoginUsernameChallenge = "Username:"  # draft-murchison-sasl-login
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: Handler, authenticator: Authenticator, **kwargs: Any) -> None:
        self._mox_authenticator = authenticator
        self._mox_kind = handler.kind
        super().__init__(handler, **kwargs)

    async def _mox_login(self, mech: str, username: bytes, password: bytes) -> AuthResult:
        try:
            user = username.decode("utf-8")
            pw = password.decode("utf-8")
        except UnicodeDecodeError:
            await self.push("501 5.5.2 username and password must be UTF-8")
            return AuthResult(success=False, handled=True)
        peer = self.session.peer[0] if self.session and self.session.peer else ""
        account = await self._mox_authenticator.login(
            user, pw, remote_ip=str(peer), protocol="submission"
        )
        if account is None:
            log.info("authentication failed", extra={"mech": mech, "username": user, "ip": peer})
            return AuthResult(success=False, handled=False, message="535 5.7.8 bad user/pass")
        log.info("authenticated", extra={"mech": mech, "username": user, "account": account})
        return AuthResult(success=True, auth_data=account, message="235 2.7.0 hello " + account)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        # RFC 4616 §2: [authzid] NUL authcid NUL passwd; RFC 4954 §4: initial response optional.
        if len(args) == 1:
            raw = await self.challenge_auth("")
            if not isinstance(raw, bytes):
                return AuthResult(success=False)
        else:
            decoded = b"" if args[1] == "=" else _b64(args[1])
            if decoded is None:
                await self.push("501 5.5.2 invalid base64")
                return AuthResult(success=False, handled=True)
            raw = decoded
        parts = raw.split(b"\x00")
        if len(parts) != 3 or parts[0] not in (b"", parts[1]):
            await self.push("501 5.5.2 malformed PLAIN response")
            return AuthResult(success=False, handled=True)
        return await self._mox_login("PLAIN", parts[1], parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            user = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(user, bytes):
                return AuthResult(success=False)
        else:
            decoded = _b64(args[1])
            if decoded is None:
                await self.push("501 5.5.2 invalid base64")
                return AuthResult(success=False, handled=True)
            user = decoded
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False)
        return await self._mox_login("LOGIN", user, password)


async def start_smtp_server(
    *,
    host: str,
    port: int,
    kind: SmtpKind,
    config: LoadedConfig,
    store: Store,
    authenticator: Authenticator,
    hostname: str,
    ssl_context: ssl.SSLContext | None,
    require_starttls: bool,
    max_message_size: int,
    localserve: bool = False,
) -> asyncio.Server:
    """Listen for SMTP of the given kind; `ssl_context` is for STARTTLS, or implicit TLS on 465."""
    loop = asyncio.get_running_loop()
    handler = Handler(
        kind=kind, config=config, store=store, hostname=hostname, localserve=localserve
    )
    implicit = kind == "submissions"
    submission = kind != "smtp"

    def factory() -> MoxSMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is only configured deliberately (localserve, internal listeners).
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return MoxSMTP(
                handler,
                authenticator,
                hostname=hostname,
                ident="ESMTP mox",
                data_size_limit=max_message_size,
                enable_SMTPUTF8=True,
                decode_data=False,
                tls_context=None if implicit else ssl_context,
                require_starttls=require_starttls and not implicit,
                auth_required=submission,
                auth_require_tls=submission and require_starttls and not implicit,
                auth_exclude_mechanism=[] if submission else ["PLAIN", "LOGIN"],
                timeout=300,
                loop=loop,
            )

    server = await loop.create_server(
        factory, host, port, ssl=ssl_context if implicit else None, reuse_address=True
    )
    log.info("listening", extra={"service": kind, "address": f"{host}:{port}"})
    return server
