"""One SMTP client session (RFC 5321) to one server address, on aiosmtplib.

The caller decides the TLS policy (RFC 7672 DANE, RFC 8461 MTA-STS, or opportunistic, RFC 3207)
and we carry it out: with a required policy there is no plaintext fallback, ever. Parameters are
only sent when the server announced the extension: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152),
SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), and the DSN ones (RFC 3461).

A message that needs SMTPUTF8 is never sent to a server that does not announce it (RFC 6531
§3.4); that is a permanent failure with enhanced code 5.6.7 (RFC 6531 §3.5).

`implicit_tls` is for smarthosts on the submissions port (RFC 8314 §3.3): TLS from the first
byte, verified as `policy` says. `auth` logs in (RFC 4954) after TLS, never without it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Literal

import aiosmtplib

from mox.dns.records import Tlsa
from mox.smtpclient.dane import usable, verify_leaf

__all__ = ["RcptResult", "SessionResult", "SmtpClientError", "TlsPolicy", "send"]

log = logging.getLogger(__name__)

TlsMode = Literal["opportunistic", "pkix", "dane", "none"]


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    mode: TlsMode
    tlsa: tuple[Tlsa, ...] = ()
    ca_files: tuple[str, ...] = ()  # extra trusted CAs for pkix


@dataclass(frozen=True, slots=True)
class RcptResult:
    rcpt: str
    code: int
    text: str
    dsn: bool = False  # the server announced DSN (RFC 3461): it reports success itself


@dataclass
class SessionResult:
    rcpts: list[RcptResult] = field(default_factory=list)
    tls_version: str = ""
    tls_verified: bool = False
    dsn_supported: bool = False


class SmtpClientError(Exception):
    """The session failed as a whole: connection, TLS policy, or a reply before RCPT."""

    def __init__(self, code: int, text: str, *, permanent: bool = False, tls_failure: str = ""):
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.permanent = permanent
        self.tls_failure = tls_failure  # RFC 8460 §4.3 result type, when it was TLS


def _context(policy: TlsPolicy) -> ssl.SSLContext:
    if policy.mode == "pkix":
        ctx = ssl.create_default_context()
        for ca in policy.ca_files:
            ctx.load_verify_locations(ca)
        return ctx
    # Opportunistic and DANE: no PKIX; DANE checks the certificate against TLSA itself.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def send(
    *,
    ip: str,
    port: int,
    host: str,
    ehlo_name: str,
    policy: TlsPolicy,
    mail_from: str,
    rcpts: list[tuple[str, list[str]]],
    data: bytes,
    mail_options: list[str],
    requiretls: bool,
    session_timeout: float = 60,
    smtputf8_required: bool = False,
    implicit_tls: bool = False,
    auth: tuple[str, str] | None = None,
) -> SessionResult:
    """Deliver `data` to the recipients; per-recipient results, or SmtpClientError."""
    if implicit_tls and policy.mode == "none":
        raise ValueError("implicit TLS needs a TLS policy")
    sock: socket.socket | None = None
    if implicit_tls:
        # Our own connected socket, so aiosmtplib verifies the certificate against the host
        # name while we dial the address we chose.
        try:
            sock = await _dial(ip, port, min(session_timeout, 30))
        except OSError as e:
            raise SmtpClientError(421, f"connecting to {host} ({ip}): {e}") from None
        client = aiosmtplib.SMTP(
            hostname=host,
            sock=sock,
            local_hostname=ehlo_name,
            timeout=session_timeout,
            start_tls=False,
            use_tls=True,
            tls_context=_context(policy),
        )
    else:
        client = aiosmtplib.SMTP(
            hostname=ip,
            port=port,
            local_hostname=ehlo_name,
            timeout=session_timeout,
            start_tls=False,
        )
    result = SessionResult()
    try:
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as e:
            cause = e if isinstance(e, ssl.SSLError) else e.__cause__
            if isinstance(cause, ssl.SSLError):
                raise SmtpClientError(
                    421, f"TLS with {host}: {cause}", tls_failure=_tls_failure(str(cause))
                ) from None
            raise SmtpClientError(421, f"connecting to {host} ({ip}): {e}") from None
        await _ehlo(client)
        if implicit_tls:
            obj = client.get_transport_info("ssl_object")
            result.tls_version = obj.version() if obj is not None else ""
            result.tls_verified = policy.mode == "pkix"
        elif policy.mode != "none" and client.supports_extension("starttls"):
            try:
                await client.starttls(server_hostname=host, tls_context=_context(policy))
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as e:
                raise SmtpClientError(
                    421, f"TLS with {host}: {e}", tls_failure=_tls_failure(str(e))
                ) from None
            obj = client.get_transport_info("ssl_object")
            result.tls_version = obj.version() if obj is not None else ""
            if policy.mode == "dane" and usable(list(policy.tlsa)):
                leaf = obj.getpeercert(binary_form=True) if obj is not None else None
                if leaf is None or not verify_leaf(list(policy.tlsa), leaf):
                    # RFC 7672 §2.2: no match, no delivery to this host.
                    raise SmtpClientError(
                        421,
                        f"{host}: certificate does not match TLSA records",
                        tls_failure="tlsa-invalid",
                    )
                result.tls_verified = True
            elif policy.mode == "pkix":
                result.tls_verified = True
            await _ehlo(client)  # RFC 3207 §4.2: start over after TLS
        elif policy.mode in ("pkix", "dane"):
            # RFC 8461 §5 and RFC 7672 §2.2: required TLS, no plaintext fallback.
            raise SmtpClientError(
                421,
                f"{host} does not offer STARTTLS, required by policy",
                tls_failure="starttls-not-supported",
            )
        if requiretls and not (result.tls_verified and client.supports_extension("requiretls")):
            # RFC 8689 §4.2: verified TLS and REQUIRETLS support at every hop, else bounce.
            raise SmtpClientError(
                550, "5.7.30 REQUIRETLS not supported by the next hop", permanent=True
            )
        if smtputf8_required and not client.supports_extension("smtputf8"):
            # RFC 6531 §3.4: not downgraded, not sent; bounced (554 so it is not mistaken for a
            # problem with the recipient's mailbox).
            raise SmtpClientError(
                554,
                f"5.6.7 {host} does not support SMTPUTF8, which this message needs",
                permanent=True,
            )
        if auth is not None:
            if not result.tls_version:
                raise SmtpClientError(
                    530, f"5.7.0 not logging in to {host} without TLS", permanent=False
                )
            try:
                await client.login(auth[0], auth[1])
            except aiosmtplib.SMTPAuthenticationError as e:
                raise SmtpClientError(
                    e.code, f"AUTH at {host} refused: {e.message}", permanent=False
                ) from None
            except aiosmtplib.SMTPException as e:
                raise SmtpClientError(451, f"4.7.0 AUTH at {host}: {e}") from None
        dsn = client.supports_extension("dsn")
        result.dsn_supported = dsn
        options = [o for o in mail_options if _supported(client, o)]
        if requiretls:
            options.append("REQUIRETLS")
        try:
            await client.mail(mail_from, options=options)
        except aiosmtplib.SMTPResponseException as e:
            raise SmtpClientError(e.code, e.message, permanent=e.code >= 500) from None
        accepted: list[str] = []
        for rcpt, rcpt_options in rcpts:
            opts = rcpt_options if result.dsn_supported else []
            try:
                await client.rcpt(rcpt, options=opts)
                accepted.append(rcpt)
            except aiosmtplib.SMTPResponseException as e:
                result.rcpts.append(RcptResult(rcpt, e.code, e.message, dsn))
        if accepted:
            try:
                resp = await client.data(data)
                code, text = resp.code, resp.message
            except aiosmtplib.SMTPResponseException as e:
                code, text = e.code, e.message
            result.rcpts += [RcptResult(r, code, text, dsn) for r in accepted]
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            pass
        return result
    except aiosmtplib.SMTPServerDisconnected as e:
        raise SmtpClientError(421, f"{host} closed the connection: {e}") from None
    except aiosmtplib.SMTPTimeoutError as e:
        raise SmtpClientError(421, f"timeout talking to {host}: {e}") from None
    finally:
        client.close()
        if sock is not None:
            sock.close()


async def _dial(ip: str, port: int, seconds: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(seconds):
            await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _tls_failure(err: str) -> str:
    """RFC 8460 §4.3 result type for a failed TLS handshake."""
    if "hostname" in err:
        return "certificate-host-mismatch"
    if "certificate" in err.lower():
        return "validation-failure"
    return "starttls-not-supported"


async def _ehlo(client: aiosmtplib.SMTP) -> None:
    try:
        await client.ehlo()
    except aiosmtplib.SMTPResponseException as e:
        raise SmtpClientError(
            e.code, f"EHLO refused: {e.message}", permanent=e.code >= 500
        ) from None


def _supported(client: aiosmtplib.SMTP, option: str) -> bool:
    key = option.split("=", 1)[0].upper()
    ext = {
        "SIZE": "size",
        "BODY": "8bitmime",
        "SMTPUTF8": "smtputf8",
        "RET": "dsn",
        "ENVID": "dsn",
    }.get(key)
    return ext is None or client.supports_extension(ext)
