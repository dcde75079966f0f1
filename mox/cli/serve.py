"""`mox serve` and `mox localserve`.

Both run on uvloop where it is installed (a dependency on every platform but Windows): its
transports cost less CPU per connection and per message than the default loop's
(bench/PROFILE.md). MOX_NO_UVLOOP=1 keeps the default asyncio loop. The loop in use is logged at
start.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mox.cli.common import ConfigOption, die, load_or_exit
from mox.log import setup_logging
from mox.server.localserve import (
    LOCALSERVE_PASSWORD,
    LOCALSERVE_PORTS,
    default_dir,
    ensure_account,
    prepare_dir,
)

if TYPE_CHECKING:
    from mox.server.run import RunningServer

log = logging.getLogger(__name__)

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's new_event_loop, or None (asyncio's default) when MOX_NO_UVLOOP=1 or it is not
    installed."""
    if os.environ.get("MOX_NO_UVLOOP", "") not in ("", "0"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on the loop of loop_factory()."""

    async def logged() -> T:
        loop = asyncio.get_running_loop()
        log.info("event loop", extra={"loop": f"{type(loop).__module__}.{type(loop).__name__}"})
        return await main

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(logged())


def serve(config: ConfigOption = Path("mox.toml")) -> None:
    """Run the mail server from a config file until SIGTERM or SIGINT."""
    from mox.server.run import run_until_signal  # the servers load only when serving

    loaded = load_or_exit(config)
    setup_logging(loaded.config.log_level, "logfmt")
    try:
        run(run_until_signal(loaded))
    except OSError as exc:
        raise die(f"mox serve: cannot listen: {exc}") from None


def localserve(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Directory for config and data; default ~/.config/mox-localserve."
        ),
    ] = None,
    ip: Annotated[
        str, typer.Option("--ip", help="IP to listen on, when the directory is first created.")
    ] = "127.0.0.1",
    initonly: Annotated[
        bool, typer.Option("--initonly", help="Only write the config and account, then exit.")
    ] = False,
) -> None:
    """Run a local mail server for testing: all mail goes to mox@localhost (password
    moxmoxmox); webmail at https://localhost:1443/webmail/, admin pages at /admin/ (password
    moxadmin)."""
    from mox.server.run import run_until_signal  # the servers load only when serving

    setup_logging("info", "console")
    directory = directory or default_dir()
    loaded = prepare_dir(directory, ip)
    asyncio.run(ensure_account(loaded))
    if initonly:
        typer.echo(f"localserve directory ready: {directory}")
        return

    def ready(running: RunningServer) -> None:
        host = loaded.config.listeners["local"].ips[0]
        user = "mox%40localhost"
        p = LOCALSERVE_PORTS
        typer.echo(
            "\n".join(
                [
                    f"mox localserve is running; config and data in {directory}",
                    f"account: mox@localhost  password: {LOCALSERVE_PASSWORD}",
                    "every address is accepted and delivered to that account",
                    f"smtp://{host}:{p['smtp']} (delivery)",
                    f"smtp://{user}:{LOCALSERVE_PASSWORD}@{host}:{p['submission']} (submission)",
                    f"smtps://{user}:{LOCALSERVE_PASSWORD}@{host}:{p['submissions']}",
                    f"imap://{user}:{LOCALSERVE_PASSWORD}@{host}:{p['imap']}",
                    f"imaps://{user}:{LOCALSERVE_PASSWORD}@{host}:{p['imaps']}",
                    f"https://localhost:{p['https']}/mail/config-v1.1.xml?emailaddress="
                    "mox@localhost (client autoconfiguration; also plain http on "
                    f"{p['http']})",
                    f"the TLS certificate is self-signed: {directory / 'localhost.crt'}",
                    "stop with ctrl-c",
                ]
            )
        )

    try:
        run(run_until_signal(loaded, localserve=True, on_ready=ready))
    except OSError as exc:
        raise die(f"mox localserve: cannot listen: {exc}") from None
