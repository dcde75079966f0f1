"""`mox queue list|hold|release|retry|drop`: the outgoing queue, also while `mox serve` runs.

The commands change the queue database directly (SQLite allows it beside the server); the
running server notices within seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from mox.cli.common import ConfigOption, load_or_exit
from mox.config.load import LoadedConfig
from mox.queue.queue import Queue
from mox.store import Store

app = typer.Typer(
    help="The outgoing queue: list messages, hold, release, retry, drop.", no_args_is_help=True
)

Ids = Annotated[list[int], typer.Argument(help="Queue message ids (see `mox queue list`).")]


def _with_queue(loaded: LoadedConfig, fn: Callable[[Queue], Awaitable[int]]) -> int:
    async def run() -> int:
        store = Store(loaded.data_dir)
        queue = Queue(loaded, store, None)
        try:
            return await fn(queue)
        finally:
            await queue.stop()
            await store.aclose()

    return asyncio.run(run())


@app.command("list")
def list_queue(
    config: ConfigOption = Path("mox.toml"),
    retired: Annotated[bool, typer.Option("--retired", help="Show finished messages.")] = False,
) -> None:
    """List queued messages: id, recipient, state, attempts, next attempt, last error."""
    loaded = load_or_exit(config)

    async def show(q: Queue) -> int:
        if retired:
            for m, result in await q.retired():
                typer.echo(f"{m.id}\t{m.rcpt}\t{result}\tattempts={m.attempts}\t{m.last_error}")
            return 0
        msgs = await q.messages()
        if not msgs:
            typer.echo("queue is empty")
        for m in msgs:
            state = "held" if m.hold else "queued"
            typer.echo(
                f"{m.id}\t{m.rcpt}\t{state}\tattempts={m.attempts}/{m.max_attempts}\t"
                f"next={m.next_attempt[:19]}\tfrom={m.mail_from}\t{m.last_error}"
            )
        return 0

    _with_queue(loaded, show)


def _change(name: str, ids: list[int], config: Path) -> None:
    loaded = load_or_exit(config)

    async def run(q: Queue) -> int:
        method = {"hold": q.hold, "release": q.release, "retry": q.retry, "drop": q.drop}[name]
        return await method(ids)

    n = _with_queue(loaded, run)
    typer.echo(f"{name}: {n} message(s)")
    if n != len(set(ids)):
        raise typer.Exit(1)


@app.command("hold")
def hold(ids: Ids, config: ConfigOption = Path("mox.toml")) -> None:
    """Keep messages in the queue without delivery attempts."""
    _change("hold", ids, config)


@app.command("release")
def release(ids: Ids, config: ConfigOption = Path("mox.toml")) -> None:
    """Let held messages be delivered again."""
    _change("release", ids, config)


@app.command("retry")
def retry(ids: Ids, config: ConfigOption = Path("mox.toml")) -> None:
    """Attempt delivery now (also releases held messages)."""
    _change("retry", ids, config)


@app.command("drop")
def drop(ids: Ids, config: ConfigOption = Path("mox.toml")) -> None:
    """Remove messages from the queue without delivering them or sending a DSN."""
    _change("drop", ids, config)
