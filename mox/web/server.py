"""Serving the starlette app with uvicorn on our own sockets and TLS context, in our event loop."""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass

import uvicorn

from mox.web.app import WebContext, create_app

__all__ = ["WebServer", "start_web_server"]

log = logging.getLogger(__name__)


@dataclass
class WebServer:
    server: uvicorn.Server
    sock: socket.socket

    async def close(self) -> None:
        self.server.should_exit = True
        await self.server.shutdown(sockets=[self.sock])


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_web_server(
    *, host: str, port: int, ctx: WebContext, ssl_context: ssl.SSLContext | None
) -> WebServer:
    """Listen for HTTP (no ssl_context) or HTTPS; the TLS context may change certificates live."""
    app = create_app(ctx, tls=ssl_context is not None)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
        limit_concurrency=1000,
        h11_max_incomplete_event_size=64 * 1024,
    )
    config.load()
    config.ssl = ssl_context  # our context: SNI switching for tls-alpn-01, live certificate swaps
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve() would set up
    sock = _bind(host, port)
    await server.startup(sockets=[sock])
    log.info(
        "listening",
        extra={"service": "https" if ssl_context else "http", "address": f"{host}:{port}"},
    )
    return WebServer(server, sock)
