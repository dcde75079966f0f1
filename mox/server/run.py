"""Start every listener a config declares, and stop them cleanly on SIGTERM/SIGINT.

Implementation notes:
- One asyncio loop runs SMTP (aiosmtpd) and IMAP (our own server) over one shared `Store`.
- Shutdown: stop accepting, close connections, then `Store.aclose()` finishes pending commits, so a
  message acknowledged before the signal is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from mox.config.load import DEFAULT_PORTS, LoadedConfig
from mox.config.model import Listener
from mox.imapserver import start_imap_server, stop_imap_server
from mox.ratelimit import ConnectionLimiter
from mox.server.authenticator import ConfigAuthenticator
from mox.smtpserver.server import start_smtp_server
from mox.smtpserver.state import SmtpKind
from mox.store import Store
from mox.tls import server_context

__all__ = ["RunningServer", "run_until_signal", "start_all"]

SMTP_KINDS: tuple[SmtpKind, ...] = ("smtp", "submission", "submissions")

log = logging.getLogger(__name__)


@dataclass
class RunningServer:
    store: Store
    servers: list[asyncio.Server] = field(default_factory=list)
    imap_servers: list[asyncio.Server] = field(default_factory=list)
    addresses: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def add(self, name: str, server: asyncio.Server, ip: str, port: int) -> None:
        self.servers.append(server)
        self.addresses.setdefault(name, []).append((ip, port))

    async def close(self) -> None:
        for srv in self.imap_servers:
            await stop_imap_server(srv)  # also ends open IMAP sessions before the store closes
        for srv in self.servers:
            srv.close()
        for srv in self.servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 3)  # mox: 3 s grace
            except TimeoutError:
                log.warning("connections still open at shutdown")
        await self.store.aclose()


def _tls_context(loaded: LoadedConfig, listener: Listener) -> ssl.SSLContext | None:
    tls = listener.tls
    if tls is None or tls.cert_file is None or tls.key_file is None:
        return None
    return server_context(
        loaded.resolve(tls.cert_file), loaded.resolve(tls.key_file), tls.min_version
    )


async def start_all(
    loaded: LoadedConfig, *, localserve: bool = False, unknown_recipient_delay: float = 5.0
) -> RunningServer:
    """Open the store and start all enabled services; raises OSError if a port is taken.

    `unknown_recipient_delay` is how long a refusal of unknown recipients waits (as mox, 5 s;
    tests shorten it)."""
    cfg = loaded.config
    store = Store(loaded.data_dir)
    running = RunningServer(store)
    authenticator = ConfigAuthenticator(loaded, store)
    limiter = ConnectionLimiter()  # shared by all SMTP listeners, per IP class
    try:
        for lname, listener in cfg.listeners.items():
            ctx = _tls_context(loaded, listener)
            hostname = listener.hostname or cfg.hostname
            for ip in listener.ips:
                for kind in SMTP_KINDS:
                    svc = getattr(listener, kind)
                    if not svc.enabled:
                        continue
                    port = svc.port or DEFAULT_PORTS[kind]
                    starttls = kind != "smtp" or listener.smtp.starttls
                    srv = await start_smtp_server(
                        host=ip,
                        port=port,
                        kind=kind,
                        config=loaded,
                        store=store,
                        authenticator=authenticator,
                        hostname=hostname,
                        ssl_context=ctx if starttls else None,
                        require_starttls=bool(getattr(svc, "require_starttls", False))
                        and ctx is not None,
                        max_message_size=listener.max_message_size,
                        limiter=limiter,
                        localserve=localserve,
                        unknown_recipient_delay=unknown_recipient_delay,
                    )
                    running.add(f"{lname}.{kind}", srv, ip, port)
                for imap_kind in ("imap", "imaps"):
                    svc = getattr(listener, imap_kind)
                    if not svc.enabled:
                        continue
                    port = svc.port or DEFAULT_PORTS[imap_kind]
                    srv = await start_imap_server(
                        host=ip,
                        port=port,
                        store=store,
                        authenticator=authenticator,
                        hostname=hostname,
                        ssl_context=ctx,
                        implicit_tls=imap_kind == "imaps",
                        require_starttls=bool(getattr(svc, "require_starttls", False))
                        and ctx is not None,
                        max_literal=cfg.limits.imap_max_literal,
                    )
                    running.add(f"{lname}.{imap_kind}", srv, ip, port)
                    running.imap_servers.append(srv)
    except BaseException:
        await running.close()
        raise
    return running


async def run_until_signal(
    loaded: LoadedConfig,
    *,
    localserve: bool = False,
    on_ready: Callable[[RunningServer], None] | None = None,
) -> None:
    """Run all services until SIGTERM or SIGINT, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start_all(loaded, localserve=localserve)
    if on_ready is not None:
        on_ready(running)
    log.info("ready")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await running.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
