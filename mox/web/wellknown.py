"""What mail clients and other servers fetch over HTTP(S), generated from the config.

- MTA-STS policy at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.3).
- Thunderbird autoconfig (clientConfig v1.1) at /mail/config-v1.1.xml and
  /.well-known/autoconfig/mail/config-v1.1.xml.
- Microsoft autodiscover (POX, outlook response schema 2006a) at /autodiscover/autodiscover.xml.
- An Apple configuration profile (com.apple.mail.managed) at /profile.mobileconfig.
- ACME http-01 tokens at /.well-known/acme-challenge/<token> (RFC 8555 §8.3).
"""

from __future__ import annotations

import plistlib
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mox.config.load import DEFAULT_PORTS, LoadedConfig
from mox.config.model import normalize_domain
from mox.dns.records import MtaStsPolicy

__all__ = ["ClientSettings", "client_settings"]

AUTODISCOVER_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    tls: str  # "SSL" (implicit TLS, RFC 8314) or "STARTTLS"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    imap: Endpoint | None
    submission: Endpoint | None


def client_settings(loaded: LoadedConfig, domain: str) -> ClientSettings:
    """The IMAP and submission endpoints to tell clients: implicit TLS preferred (RFC 8314 §3)."""
    cfg = loaded.config
    host = cfg.domains[domain].client_settings_domain or cfg.hostname
    imap = submission = None
    for kind, other, attr in (("imaps", "imap", "imap"), ("submissions", "submission", "sub")):
        found = None
        for listener in cfg.listeners.values():
            svc = getattr(listener, kind)
            if svc.enabled:
                found = Endpoint(host, svc.port or DEFAULT_PORTS[kind], "SSL")
                break
        if found is None:
            for listener in cfg.listeners.values():
                svc = getattr(listener, other)
                if svc.enabled and listener.tls is not None:
                    found = Endpoint(host, svc.port or DEFAULT_PORTS[other], "STARTTLS")
                    break
        if attr == "imap":
            imap = found
        else:
            submission = found
    return ClientSettings(imap, submission)


def _domain_of(loaded: LoadedConfig, address: str | None, host: str | None) -> str | None:
    candidates = []
    if address and "@" in address:
        candidates.append(address.rpartition("@")[2])
    if host:
        name = host.split(":")[0]
        candidates.append(name.removeprefix("autoconfig.").removeprefix("autodiscover."))
    for text in candidates:
        try:
            domain = normalize_domain(text)
        except ValueError:
            continue
        if domain in loaded.config.domains:
            return domain
    return None


def mta_sts_policy(loaded: LoadedConfig, host: str | None) -> Response:
    name = (host or "").split(":")[0].lower().rstrip(".")
    if not name.startswith("mta-sts."):
        return PlainTextResponse("not found\n", 404)
    domain = _domain_of(loaded, None, name.removeprefix("mta-sts."))
    policy_cfg = loaded.config.domains[domain].mta_sts if domain else None
    if policy_cfg is None:
        return PlainTextResponse("not found\n", 404)
    mx = tuple(policy_cfg.mx) or (loaded.config.hostname,)
    policy = MtaStsPolicy(policy_cfg.mode, policy_cfg.max_age, mx)
    # RFC 8461 §3.2: "text/plain", lines ending in CRLF.
    text = policy.to_text().replace("\r\n", "\n").strip("\n").replace("\n", "\r\n") + "\r\n"
    return PlainTextResponse(text)


def autoconfig(loaded: LoadedConfig, request: Request) -> Response:
    domain = _domain_of(
        loaded, request.query_params.get("emailaddress"), request.headers.get("host")
    )
    if domain is None:
        return PlainTextResponse("unknown domain\n", 404)
    s = client_settings(loaded, domain)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{escape(domain)}">',
        f"    <domain>{escape(domain)}</domain>",
        f"    <displayName>{escape(domain)}</displayName>",
        f"    <displayShortName>{escape(domain)}</displayShortName>",
    ]
    for tag, kind, ep in (
        ("incomingServer", "imap", s.imap),
        ("outgoingServer", "smtp", s.submission),
    ):
        if ep is None:
            continue
        parts += [
            f'    <{tag} type="{kind}">',
            f"      <hostname>{escape(ep.host)}</hostname>",
            f"      <port>{ep.port}</port>",
            f"      <socketType>{ep.tls}</socketType>",
            "      <username>%EMAILADDRESS%</username>",
            "      <authentication>password-cleartext</authentication>",
            f"    </{tag}>",
        ]
    parts += ["  </emailProvider>", "</clientConfig>", ""]
    return Response("\n".join(parts), media_type="application/xml")


async def autodiscover(loaded: LoadedConfig, request: Request) -> Response:
    body = await request.body()
    if len(body) > 64 * 1024:
        return PlainTextResponse("request too large\n", 413)
    try:
        root = SafeET.fromstring(body)
    except Exception:  # defusedxml raises several types for malformed or hostile XML
        return PlainTextResponse("bad request: expected autodiscover XML\n", 400)
    email = root.findtext(f".//{{{AUTODISCOVER_NS}}}EMailAddress") or root.findtext(
        ".//EMailAddress"
    )
    domain = _domain_of(loaded, email, None)
    if domain is None or email is None:
        return PlainTextResponse("unknown address\n", 404)
    s = client_settings(loaded, domain)
    protocols = []
    for kind, ep in (("IMAP", s.imap), ("SMTP", s.submission)):
        if ep is None:
            continue
        protocols.append(
            "<Protocol>"
            f"<Type>{kind}</Type><Server>{escape(ep.host)}</Server><Port>{ep.port}</Port>"
            f"<LoginName>{escape(email)}</LoginName>"
            f"<SSL>on</SSL><Encryption>{'SSL' if ep.tls == 'SSL' else 'TLS'}</Encryption>"
            "<SPA>off</SPA><AuthRequired>on</AuthRequired>"
            "</Protocol>"
        )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        f'<Response xmlns="{RESPONSE_SCHEMA}"><Account><AccountType>email</AccountType>'
        f"<Action>settings</Action>{''.join(protocols)}</Account></Response></Autodiscover>"
    )
    return Response(xml, media_type="application/xml")


def mobileconfig(loaded: LoadedConfig, request: Request) -> Response:
    email = request.query_params.get("email", "")
    domain = _domain_of(loaded, email, None)
    if domain is None or loaded.lookup(email) is None:
        return PlainTextResponse("unknown address\n", 404)
    s = client_settings(loaded, domain)
    if s.imap is None or s.submission is None:
        return PlainTextResponse("no IMAP or submission service configured\n", 404)
    ident = f"mox.{domain}.{email}"
    mail = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.mail",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{ident}.mail")).upper(),
        "PayloadDisplayName": email,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAccountDescription": email,
        "EmailAddress": email,
        "IncomingMailServerHostName": s.imap.host,
        "IncomingMailServerPortNumber": s.imap.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": email,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": s.submission.host,
        "OutgoingMailServerPortNumber": s.submission.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": email,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": ident,
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, ident)).upper(),
        "PayloadDisplayName": f"{email} mail",
        "PayloadContent": [mail],
    }
    return Response(
        plistlib.dumps(profile),
        media_type="application/x-apple-aspen-config",
        headers={"Content-Disposition": 'attachment; filename="mail.mobileconfig"'},
    )
