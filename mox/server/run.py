"""Start every listener a config declares, and stop them cleanly on SIGTERM/SIGINT.

Implementation notes:
- One asyncio loop runs SMTP (aiosmtpd), IMAP (our own server) and HTTP(S) (starlette on
  uvicorn) over one shared `Store`.
- Each listener has one `ListenerTls` shared by its services: certificates from files (reloaded on
  SIGHUP) or from ACME; a new certificate is swapped into the live context, no restart needed.
- SIGHUP also re-reads the config file: a valid one replaces the running config in place (every
  part holds the same `LoadedConfig`), an invalid one is refused with its problems logged.
- Start order: web listeners first (they answer ACME challenges), then certificates, then mail.
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
from typing import TYPE_CHECKING

from mox.config.load import DEFAULT_PORTS, ConfigError, LoadedConfig, load_config
from mox.config.model import Listener
from mox.dns.resolver import Resolver
from mox.imapserver import start_imap_server, stop_imap_server
from mox.junk import train as junk_train
from mox.metrics import CountedLimiter
from mox.queue.queue import Queue
from mox.ratelimit import ConnectionLimiter
from mox.server import mailauth
from mox.server.authenticator import ConfigAuthenticator
from mox.server.ctl import CTL_NAME, start_ctl
from mox.server.localserve import queue_transport
from mox.smtpserver.server import drain_smtp_server, start_smtp_server
from mox.smtpserver.state import SmtpKind
from mox.store import Store
from mox.tls.certs import ListenerTls
from mox.web.app import WebContext
from mox.web.server import WebServer, start_web_server
from mox.web.sites import SiteEnv
from mox.webapi import WebApi
from mox.webhook import Webhooks

if TYPE_CHECKING:
    from mox.acme.manager import AcmeManager

__all__ = ["RunningServer", "run_until_signal", "start_all"]

SMTP_KINDS: tuple[SmtpKind, ...] = ("smtp", "submission", "submissions")

log = logging.getLogger(__name__)


# Config sections that only take effect at start: a reload that changes them logs that a restart
# is needed, and applies everything else.
RESTART_SECTIONS = ("data_dir", "hostname", "listeners", "acme", "dns")


@dataclass
class RunningServer:
    store: Store
    loaded: LoadedConfig | None = None  # updated in place by reload_config
    servers: list[asyncio.Server] = field(default_factory=list)
    imap_servers: list[asyncio.Server] = field(default_factory=list)
    web_servers: list[WebServer] = field(default_factory=list)
    acme: dict[str, AcmeManager] = field(default_factory=dict)  # by listener name
    tls: dict[str, ListenerTls] = field(default_factory=dict)  # by listener name
    addresses: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # background work to cancel
    queue: Queue | None = None
    webhooks: Webhooks | None = None
    junk_training: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # by account

    def reload_certificates(self) -> None:
        """SIGHUP: reload certificates from their files (ACME ones renew by themselves)."""
        for name, holder in self.tls.items():
            try:
                if holder.reload():
                    log.info("certificate reloaded", extra={"listener": name})
            except (OSError, ssl.SSLError) as exc:
                log.error(
                    "certificate reload failed, keeping the old one",
                    extra={"listener": name, "err": str(exc)},
                )

    def apply_accounts(self) -> None:
        """Per-account runtime state from the config: quotas and junk filter training."""
        if self.loaded is None:
            return
        for name, acc_cfg in self.loaded.config.accounts.items():
            account = self.store.account(name)
            account.quota = acc_cfg.quota_bytes or None  # IMAP QUOTA (RFC 9208), OVERQUOTA
            if acc_cfg.junk_filter is not None and name not in self.junk_training:
                # mox.junk: train from $Junk/$NotJunk flags
                self.junk_training[name] = junk_train.start(account, acc_cfg.junk_filter)
                self.tasks.append(self.junk_training[name])

    async def reload_config(self) -> list[str]:
        """Re-read the config file and apply it without dropping connections (SIGHUP, and the
        admin pages after they write the file). Accounts, addresses, aliases, domains, DKIM
        selectors, limits, routes and policies take effect for the next transaction; sections in
        RESTART_SECTIONS need a restart, which is logged; they are returned. Raises ConfigError,
        keeping the running config, when the file is not valid."""
        if self.loaded is None:
            return []
        new = await asyncio.to_thread(load_config, self.loaded.path)
        old = self.loaded.config
        pending = [s for s in RESTART_SECTIONS if getattr(new.config, s) != getattr(old, s)]
        self.loaded.config = new.config
        self.loaded.addresses = new.addresses
        self.apply_accounts()
        log.info("config reloaded", extra={"path": str(self.loaded.path)})
        if pending:
            log.warning(
                "config changes that need a restart were not applied",
                extra={"sections": ",".join(pending)},
            )
        return pending

    async def reload(self) -> None:
        """SIGHUP: certificates from their files, then the config file."""
        self.reload_certificates()
        try:
            await self.reload_config()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload refused, keeping the running config: " + problem)

    async def reload_for_ctl(self) -> list[str]:
        """`mox reload` over the control socket: as SIGHUP, but a refusal is raised (ConfigError)
        so the command can print it; returns the sections that need a restart."""
        self.reload_certificates()
        try:
            return await self.reload_config()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload refused, keeping the running config: " + problem)
            raise

    def add(self, name: str, server: asyncio.Server, ip: str, port: int) -> None:
        self.servers.append(server)
        self.addresses.setdefault(name, []).append((ip, port))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for manager in self.acme.values():
            await manager.stop()
        for web in self.web_servers:
            await web.close()
        for srv in self.imap_servers:
            await stop_imap_server(srv)  # also ends open IMAP sessions before the store closes
        # SMTP: no new connections or transactions, but let those in DATA finish (bounded).
        await asyncio.gather(*(drain_smtp_server(srv) for srv in self.servers))
        for srv in self.servers:
            try:
                await asyncio.wait_for(srv.wait_closed(), 3)  # mox: 3 s grace
            except TimeoutError:
                log.warning("connections still open at shutdown")
        if self.queue is not None:
            await self.queue.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        await self.store.aclose()


def acme_names(loaded: LoadedConfig, listener: Listener) -> list[str]:
    """Names a listener's ACME certificate covers: the host, and per domain mta-sts.<domain>
    (when it publishes a policy) and autoconfig.<domain> (when the listener serves HTTPS)."""
    cfg = loaded.config
    names = [listener.hostname or cfg.hostname]
    for domain, dom in sorted(cfg.domains.items()):
        if dom.mta_sts is not None:
            names.append(f"mta-sts.{domain}")
        if listener.https.enabled:
            names.append(f"autoconfig.{domain}")
    return list(dict.fromkeys(names))


async def _start_tls(
    loaded: LoadedConfig,
    running: RunningServer,
    web: WebContext,
    lname: str,
    listener: Listener,
) -> None:
    tls = listener.tls
    if tls is None:
        return
    holder = ListenerTls(tls.min_version)
    running.tls[lname] = holder
    if tls.cert_file is not None and tls.key_file is not None:
        holder.load_files(loaded.resolve(tls.cert_file), loaded.resolve(tls.key_file))
    elif tls.acme is not None:
        # Imported here: the ACME client and its HTTP stack are a tenth of the start-up time
        # (bench/PROFILE.md) and most listeners do not use them.
        from mox.acme.manager import AcmeManager

        running.acme[lname] = AcmeManager(
            provider_name=tls.acme,
            provider=loaded.config.acme[tls.acme],
            names=acme_names(loaded, listener),
            directory=loaded.data_dir / "acme" / tls.acme,
            listener=lname,
            tls=holder,
            http_tokens=web.http_tokens,
            host_key_files=list(tls.host_private_key_files),
            resolve=loaded.resolve,
        )


async def start_all(
    loaded: LoadedConfig,
    *,
    localserve: bool = False,
    unknown_recipient_delay: float = 5.0,
    resolver: Resolver | None = None,
) -> RunningServer:
    """Open the store and start all enabled services; raises OSError if a port is taken.

    `unknown_recipient_delay` is how long a refusal of unknown recipients waits (as mox, 5 s;
    tests shorten it). `resolver` replaces the one the config's `dns` section describes (tests
    give theirs); localserve uses none but answers from the config."""
    cfg = loaded.config
    store = Store(loaded.data_dir)
    running = RunningServer(store, loaded)
    mail_auth = mailauth.setup(loaded, localserve=localserve, resolver=resolver)
    authenticator = ConfigAuthenticator(loaded, store)
    running.apply_accounts()
    limiter = ConnectionLimiter()  # shared by all SMTP and IMAP listeners, per IP class
    if localserve:
        # As mox: localserve's queue delivers to its own SMTP listener, with no DNS at all.
        queue = Queue(loaded, store, None, localserve=queue_transport(loaded))
    else:
        queue = Queue(loaded, store, mail_auth.resolver)
    running.queue = queue
    running.webhooks = Webhooks(loaded, store)  # mox.webhook: account event POSTs
    running.webhooks.register()
    queue.retire_hooks.append(running.webhooks.outgoing)
    webapi = WebApi(
        loaded,
        store,
        authenticator,
        queue,
        localserve=localserve,
        unknown_recipient_delay=unknown_recipient_delay,
    )
    sites = SiteEnv(
        loaded,
        store,
        authenticator,
        webapi,
        queue,
        localserve=localserve,
        reload_config=running.reload_config,
    )
    try:
        await queue.start()
        if not localserve:  # as mox: localserve sends no DMARC or TLS reports
            worker = mailauth.dmarc_report_worker(loaded, mail_auth, queue=queue)
            running.tasks.append(asyncio.create_task(worker, name="dmarc-reports"))
        for lname, listener in cfg.listeners.items():
            https_port = listener.https.port or DEFAULT_PORTS["https"]
            web = WebContext(
                loaded,
                https_port=https_port if listener.https.enabled else None,
                hsts=not localserve,
                webapi=webapi,
                sites=sites,
            )
            await _start_tls(loaded, running, web, lname, listener)
            holder = running.tls.get(lname)
            for ip in listener.ips:
                for web_kind in ("http", "https"):
                    svc = getattr(listener, web_kind)
                    if not svc.enabled:
                        continue
                    port = svc.port or DEFAULT_PORTS[web_kind]
                    web_server = await start_web_server(
                        host=ip,
                        port=port,
                        ctx=web,
                        ssl_context=holder.context if web_kind == "https" and holder else None,
                    )
                    running.web_servers.append(web_server)
                    running.addresses.setdefault(f"{lname}.{web_kind}", []).append((ip, port))
            manager = running.acme.get(lname)
            if manager is not None:
                await manager.start()
        for lname, listener in cfg.listeners.items():
            holder = running.tls.get(lname)
            ctx = holder.context if holder is not None else None
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
                        limiter=CountedLimiter(limiter, kind),  # mox.metrics
                        localserve=localserve,
                        unknown_recipient_delay=unknown_recipient_delay,
                        resolver=mail_auth.resolver,
                        reports=mail_auth.reports,
                        queue=queue,
                        dns_comment=mail_auth.comment,
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
                        limiter=CountedLimiter(limiter, imap_kind),  # shared with SMTP
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
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = asyncio.create_task(running.reload(), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    ctl = await start_ctl(loaded.data_dir, running.reload_for_ctl)  # `mox reload`
    if on_ready is not None:
        on_ready(running)
    log.info("ready")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if ctl is not None:
            ctl.close()
            (loaded.data_dir / CTL_NAME).unlink(missing_ok=True)
        await running.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
