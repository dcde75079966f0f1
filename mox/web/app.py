"""The starlette application: well-known endpoints, the web API (mox.webapi) and the webmail,
account and admin sites (mox.web.sites).

Plain HTTP (port 80) answers ACME http-01 and redirects everything else to HTTPS. Every response
carries security headers; HTTPS ones add HSTS (RFC 6797) unless it is a localserve test setup.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mox import metrics
from mox.config.load import LoadedConfig
from mox.web import wellknown
from mox.web.sites import site_routes

if TYPE_CHECKING:
    from mox.web.sites import SiteEnv
    from mox.webapi import WebApi

__all__ = ["WebContext", "create_app"]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


@dataclass
class WebContext:
    config: LoadedConfig
    # ACME http-01 token -> key authorization (mox.acme.manager.HttpTokens, RFC 8555 §8.3)
    http_tokens: dict[str, str] = field(default_factory=dict)
    https_port: int | None = None  # where plain HTTP redirects to; None: no HTTPS
    hsts: bool = True
    webapi: WebApi | None = None  # /webapi/v0/ on HTTPS listeners (mox.webapi)
    sites: SiteEnv | None = None  # /webmail/, /account/, /admin/ on HTTPS listeners


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, tls: bool, hsts: bool) -> None:
        self.app = app
        self.extra = SECURITY_HEADERS + ([HSTS] if tls and hsts else [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in self.extra if k not in names
                ]
            await send(message)

        await self.app(scope, receive, wrapped)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(ctx: WebContext, *, tls: bool) -> ASGIApp:
    loaded = ctx.config

    async def acme_challenge(request: Request) -> Response:
        token = request.path_params["token"]
        value = ctx.http_tokens.get(token)
        if value is None:
            return PlainTextResponse("no such challenge\n", 404)
        return PlainTextResponse(value)  # RFC 8555 §8.3: the key authorization

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def mta_sts(request: Request) -> Response:
        return wellknown.mta_sts_policy(loaded, request.headers.get("host"))

    async def autoconfig(request: Request) -> Response:
        return wellknown.autoconfig(loaded, request)

    async def autodiscover(request: Request) -> Response:
        return await wellknown.autodiscover(loaded, request)

    async def mobileconfig(request: Request) -> Response:
        return wellknown.mobileconfig(loaded, request)

    def redirect(request: Request) -> Response:
        if ctx.https_port is None:
            return PlainTextResponse("not found\n", 404)
        host = (request.headers.get("host") or loaded.config.hostname).split(":")[0]
        port = "" if ctx.https_port == 443 else f":{ctx.https_port}"
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"https://{host}{port}{request.url.path}{query}", 308)

    async def fallback(request: Request) -> Response:
        if not tls:
            return redirect(request)
        return PlainTextResponse("not found\n", 404)

    async def metrics_endpoint(request: Request) -> Response:
        # Prometheus scrapes from this machine only: the metrics say who connects how often.
        host = request.client.host if request.client is not None else ""
        if not _is_loopback(host):
            return PlainTextResponse("forbidden\n", 403)
        data = await asyncio.to_thread(metrics.render, loaded.data_dir)
        return Response(data, media_type=metrics.CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/.well-known/acme-challenge/{token}", acme_challenge),
        Route("/health", health),
        Route("/metrics", metrics_endpoint),
    ]
    if tls:
        routes += [
            Route("/.well-known/mta-sts.txt", mta_sts),
            Route("/mail/config-v1.1.xml", autoconfig),
            Route("/.well-known/autoconfig/mail/config-v1.1.xml", autoconfig),
            Route("/autodiscover/autodiscover.xml", autodiscover, methods=["POST"]),
            Route("/Autodiscover/Autodiscover.xml", autodiscover, methods=["POST"]),
            Route("/profile.mobileconfig", mobileconfig),
        ]
        if ctx.webapi is not None:
            routes += ctx.webapi.routes()
        if ctx.sites is not None:
            routes += site_routes(ctx.sites)
    # Plain HTTP serves only ACME and health; the rest moves to HTTPS (RFC 8461 §3.3 for the
    # MTA-STS policy, and passwords in autoconfig answers are nobody's business in clear).
    routes.append(Route("/{path:path}", fallback, methods=["GET", "HEAD", "POST"]))
    app = Starlette(routes=routes)
    return SecurityHeaders(app, tls, ctx.hsts)
