"""One SMTP client session (RFC 5321) to one server address, on aiosmtplib.

The caller decides the TLS policy (RFC 7672 DANE, RFC 8461 MTA-STS, or opportunistic, RFC 3207)
and we carry it out: with a required policy there is no plaintext fallback, ever. Parameters are
only sent when the server announced the extension: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152),
SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), and the DSN ones (RFC 3461).
"""

from __future__ import annotations

import logging
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
) -> SessionResult:
    """Deliver `data` to the recipients; per-recipient results, or SmtpClientError."""
    client = aiosmtplib.SMTP(
        hostname=ip, port=port, local_hostname=ehlo_name, timeout=session_timeout, start_tls=False
    )
    result = SessionResult()
    try:
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as e:
            raise SmtpClientError(421, f"connecting to {host} ({ip}): {e}") from None
        await _ehlo(client)
        if policy.mode != "none" and client.supports_extension("starttls"):
            try:
                await client.starttls(server_hostname=host, tls_context=_context(policy))
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as e:
                failure = (
                    "certificate-host-mismatch"
                    if "hostname" in str(e)
                    else (
                        "validation-failure"
                        if "certificate" in str(e).lower()
                        else "starttls-not-supported"
                    )
                )
                raise SmtpClientError(421, f"TLS with {host}: {e}", tls_failure=failure) from None
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
        result.dsn_supported = client.supports_extension("dsn")
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
                result.rcpts.append(RcptResult(rcpt, e.code, e.message))
        if accepted:
            try:
                resp = await client.data(data)
                code, text = resp.code, resp.message
            except aiosmtplib.SMTPResponseException as e:
                code, text = e.code, e.message
            result.rcpts += [RcptResult(r, code, text) for r in accepted]
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
