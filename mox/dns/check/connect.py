"""dnscheck sections that connect: TLS on port 25 (STARTTLS, RFC 3207) and the HTTPS fetch of the
MTA-STS policy (RFC 8461 §3.3). Addresses and ports come from `CheckOptions`, so tests point
them at servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

from cryptography import x509

from mox.dane import spki_sha256
from mox.dns.check.context import Context
from mox.dns.check.model import Section
from mox.dns.expected import expected_tlsa

__all__ = ["HttpResponse", "TlsFailure", "check_tls", "https_get", "smtp_starttls"]

MAX_BODY = 64 * 1024  # RFC 8461 §3.3: policies are small; mox limits them too


class TlsFailure(Exception):
    """A connection, protocol or certificate problem, with a readable message."""


def client_context(cafile: str | None, verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait (bounded), so no transport is left for the garbage collector."""
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 2)


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One SMTP reply, multi-line joined (RFC 5321 §4.2.1)."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise TlsFailure("connection closed by the server")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit():
            raise TlsFailure(f"not an SMTP reply: {line[:80]!r}")
        lines.append(line[4:])
        if line[3:4] != "-":
            return int(line[:3]), lines


async def smtp_starttls(
    ip: str, port: int, server_name: str, ehlo: str, ctx: ssl.SSLContext, time_limit: float
) -> bytes:
    """Connect, EHLO, STARTTLS, handshake; the server's certificate (DER). Raises TlsFailure."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(ip, port)
            code, lines = await _reply(reader)
            if code != 220:  # RFC 5321 §4.3.1 greeting
                raise TlsFailure(f"greeting {code} {' '.join(lines)[:100]}")
            writer.write(f"EHLO {ehlo}\r\n".encode())
            code, lines = await _reply(reader)
            if code != 250:
                raise TlsFailure(f"EHLO refused: {code} {' '.join(lines)[:100]}")
            if not any(line.upper().split(" ")[0] == "STARTTLS" for line in lines[1:]):
                raise TlsFailure("the server does not offer STARTTLS (RFC 3207)")
            writer.write(b"STARTTLS\r\n")
            code, lines = await _reply(reader)
            if code != 220:  # RFC 3207 §4
                raise TlsFailure(f"STARTTLS refused: {code} {' '.join(lines)[:100]}")
            await writer.start_tls(ctx, server_hostname=server_name)
            sslobj = writer.get_extra_info("ssl_object")
            cert = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            if not cert:
                raise TlsFailure("no certificate from the server")
            writer.write(b"QUIT\r\n")
            return bytes(cert)
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailure(f"certificate not valid for {server_name}: {exc.verify_message}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsFailure(f"{type(exc).__name__}: {exc}") from None
    except TimeoutError:
        raise TlsFailure(f"no answer within {time_limit:.0f}s") from None
    finally:
        if writer is not None:
            await _close(writer)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def https_get(
    ip: str, port: int, host: str, path: str, ctx: ssl.SSLContext, time_limit: float
) -> HttpResponse:
    """A plain HTTP/1.1 GET over TLS (RFC 9112), no redirects followed (RFC 8461 §3.3)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(time_limit):
            reader, writer = await asyncio.open_connection(ip, port, ssl=ctx, server_hostname=host)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mox-dnscheck\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status_line = (await reader.readline()).decode("latin-1").strip()
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise TlsFailure(f"not an HTTP response: {status_line[:80]!r}")
            headers: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            elif "content-length" in headers:
                size = int(headers["content-length"])
                if size > MAX_BODY:
                    raise TlsFailure(f"response of {size} bytes is too large")
                body = await reader.readexactly(size)
            else:
                body = await reader.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise TlsFailure("response too large")
            return HttpResponse(int(parts[1]), headers, body)
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailure(f"certificate not valid for {host}: {exc.verify_message}") from None
    except (ssl.SSLError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        raise TlsFailure(f"{type(exc).__name__}: {exc}") from None
    except TimeoutError:
        raise TlsFailure(f"no answer within {time_limit:.0f}s") from None
    finally:
        if writer is not None:
            await _close(writer)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return body
        body += await reader.readexactly(size)
        await reader.readline()
        if len(body) > MAX_BODY:
            raise TlsFailure("response too large")


async def check_tls(ctx: Context) -> Section:
    """For each address of the host: SMTP on port 25 offers STARTTLS with a certificate that
    verifies for the host name (WebPKI, or the --tls-ca bundle) and uses one of our DANE keys."""
    host = ctx.facts.hostname
    sec = Section("TLS", host)
    opts = ctx.options
    targets = [opts.connect_ip] if opts.connect_ip else await ctx.ips(host)
    if not targets:
        sec.error(f"{host} has no addresses to connect to", ctx.fix("MX", "", host))
        return sec
    cafile = str(opts.tls_ca) if opts.tls_ca else None
    dane = {t.data for t in expected_tlsa(ctx.facts)}
    mta_sts = any(d.config.mta_sts is not None for d in ctx.facts.domains)
    for ip in targets:
        where = f"{ip} port {opts.smtp_port}"
        try:
            der = await smtp_starttls(
                ip, opts.smtp_port, host, host, client_context(cafile), opts.timeout
            )
            verified = True
            problem = ""
        except TlsFailure as exc:
            problem = str(exc)
            if "certificate" not in problem:
                sec.error(f"{where}: {problem}")
                continue
            verified = False
            try:
                der = await smtp_starttls(
                    ip, opts.smtp_port, host, host, client_context(None, False), opts.timeout
                )
            except TlsFailure as exc2:
                sec.error(f"{where}: {exc2}")
                continue
        cert = x509.load_der_x509_certificate(der)
        key_matches = spki_sha256(cert.public_key()) in dane
        if not verified:
            message = f"{where}: STARTTLS works, but {problem}"
            if key_matches and not mta_sts:
                sec.warn(
                    message + "; DANE-verifying senders accept it (the key matches our TLSA), "
                    "others that verify do not"
                )
            else:
                sec.error(message + "; install a certificate from a CA for " + host)
            continue
        if dane and not key_matches:
            sec.error(
                f"{where}: the certificate's key is not one of our host keys, so DANE "
                "verification of the TLSA records fails: issue the certificate for a host key"
            )
            continue
        sec.ok(f"{where}: STARTTLS with a valid certificate for {host}")
    return sec
