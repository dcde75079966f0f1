"""The IMAP listener: ``start_imap_server`` and ``stop_imap_server``.

IMAP4rev2 (RFC 9051) and IMAP4rev1 (RFC 3501) over plain TCP with STARTTLS (RFC 9051 §6.2.1) or
implicit TLS ("IMAPS", RFC 8314 §3.3).

Implementation notes:
- Each connection gets a ``Transport`` (asyncio Protocol) and a ``Session`` task running the command
  loop; see ``mox.imapserver.session`` for locking and ordering.
- With ``require_starttls`` and no TLS yet, LOGINDISABLED is announced instead of AUTH=PLAIN and
  LOGIN/AUTHENTICATE answer NO [PRIVACYREQUIRED] (RFC 9051 §6.2.3, RFC 5530).
- Session tasks are tracked per server so ``stop_imap_server`` can end them;
  ``asyncio.Server.close`` alone leaves established connections running on Python 3.11. Stopping
  is graceful and bounded (like SMTP's ``drain_smtp_server``): sessions waiting for a command say
  BYE at once, a command being received or executed (an APPEND whose literal is arriving) is
  finished and answered first; after ``grace`` seconds the sessions left are cancelled.
- ``limiter`` (shared with SMTP, ``mox.ratelimit.ConnectionLimiter``) bounds connections per IP
  class; a connection over the limit gets ``* BYE`` and is closed.
- ``junk_flags``: $Junk/$NotJunk on COPY/MOVE by destination name (None turns it off).
"""

from __future__ import annotations

import asyncio
import ssl
import weakref

from mox.auth.login import Authenticator
from mox.imapserver.session import ServerConfig, Session
from mox.imapserver.transport import Transport
from mox.ratelimit import ConnectionLimiter
from mox.store import Store
from mox.store.junkflags import DEFAULT_JUNK_FLAG_RULES, JunkFlagRules

_SESSIONS: weakref.WeakKeyDictionary[asyncio.Server, dict[asyncio.Task[None], Session]] = (
    weakref.WeakKeyDictionary()
)
STOP_GRACE = 5.0


async def start_imap_server(
    *,
    host: str,
    port: int,
    store: Store,
    authenticator: Authenticator,
    hostname: str,
    ssl_context: ssl.SSLContext | None,
    implicit_tls: bool,
    require_starttls: bool,
    max_literal: int = 100 * 1024 * 1024,
    limiter: ConnectionLimiter | None = None,
    junk_flags: JunkFlagRules | None = DEFAULT_JUNK_FLAG_RULES,
) -> asyncio.Server:
    """Listen for IMAP on host:port; returns the (serving) asyncio.Server."""
    if implicit_tls and ssl_context is None:
        raise ValueError("implicit_tls needs an ssl_context")
    if require_starttls and ssl_context is None:
        raise ValueError("require_starttls without an ssl_context would refuse every login")
    config = ServerConfig(
        store=store,
        authenticator=authenticator,
        hostname=hostname,
        ssl_context=ssl_context,
        implicit_tls=implicit_tls,
        require_starttls=require_starttls,
        max_literal=max_literal,
        limiter=limiter,
        junk_flags=junk_flags,
    )
    loop = asyncio.get_running_loop()
    tasks: dict[asyncio.Task[None], Session] = {}

    def on_connect(io: Transport) -> None:
        session = Session(config, io)
        task = loop.create_task(session.run(), name=f"imap {io.remote_ip}")
        tasks[task] = session
        task.add_done_callback(lambda t: tasks.pop(t, None))

    server = await loop.create_server(
        lambda: Transport(on_connect),
        host,
        port,
        ssl=ssl_context if implicit_tls else None,
        ssl_handshake_timeout=30.0 if implicit_tls else None,
    )
    _SESSIONS[server] = tasks
    return server


async def stop_imap_server(server: asyncio.Server, grace: float = STOP_GRACE) -> bool:
    """Stop listening and end all sessions of a server started by start_imap_server, letting
    commands in progress finish for up to grace seconds. True when no session had to be cut off."""
    server.close()
    sessions = dict(_SESSIONS.pop(server, {}))
    for session in sessions.values():
        session.request_stop()
    pending: set[asyncio.Task[None]] = set()
    if sessions:
        _, pending = await asyncio.wait(sessions, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
    await server.wait_closed()
    return not pending
