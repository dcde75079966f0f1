"""`mox queue list|show|hold|release|retry|drop|suppress`: the outgoing queue, also while
`mox serve` runs.

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
from mox.queue.queue import MessageDetails, Queue
from mox.queue.suppression import SuppressionError
from mox.store import Store

app = typer.Typer(
    help="The outgoing queue: list messages, hold, release, retry, drop, suppression lists.",
    no_args_is_help=True,
)
suppress_app = typer.Typer(
    help="Per-account suppression lists: recipients that hard-bounced are refused.",
    no_args_is_help=True,
)
app.add_typer(suppress_app, name="suppress")

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


def _show(d: MessageDetails) -> list[str]:
    m = d.msg
    if d.result is not None:
        state = f"retired ({d.result} at {(d.retired_at or '')[:19]})"
    else:
        state = "held" if m.hold else "queued"
    dsn = [
        f"RET={m.dsn_ret}" if m.dsn_ret else "",
        f"ENVID={m.dsn_envid}" if m.dsn_envid else "",
        f"NOTIFY={m.notify}" if m.notify else "",
        f"ORCPT={m.orcpt}" if m.orcpt else "",
    ]
    requiretls = {None: "default", True: "yes", False: "no (TLS-Required: No)"}[m.requiretls]
    lines = [
        f"id:           {m.id}",
        f"state:        {state}",
        f"account:      {m.account or '(none: server-generated)'}",
        f"from:         <{m.mail_from}>",
        f"recipient:    <{m.rcpt}>",
        f"transport:    {d.transport}",
        f"size:         {m.size} bytes",
        f"queued:       {m.queued[:19]}",
        f"attempts:     {m.attempts} of {m.max_attempts}",
        f"next attempt: {'-' if d.result is not None else m.next_attempt[:19]}",
        f"last error:   {m.last_error or '-'}",
        f"hold:         {'yes' if m.hold else 'no'}",
        f"smtputf8:     {'yes' if m.smtputf8 else 'no'}",
        f"8bit:         {'yes' if m.has_8bit else 'no'}",
        f"requiretls:   {requiretls}",
        f"dsn:          {' '.join(x for x in dsn if x) or '-'}",
        f"delay dsn:    {'sent' if m.delay_dsn_sent else 'not sent'}",
    ]
    if d.siblings:
        lines.append("other recipients of this message:")
        lines += [f"  {i}\t<{rcpt}>\t{st}" for i, rcpt, st in d.siblings]
    lines.append("header:" if d.header_lines else "header:       (message file removed)")
    lines += [f"  {line}" for line in d.header_lines]
    return lines


@app.command("show")
def show(
    msg_id: Annotated[int, typer.Argument(help="Queue message id (see `mox queue list`).")],
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Everything about one queued (or retired) message: envelope, state, attempts, errors,
    transport, DSN parameters and the first lines of its header."""
    loaded = load_or_exit(config)

    async def run(q: Queue) -> int:
        d = await q.details(msg_id)
        if d is None:
            return 1
        for line in _show(d):
            typer.echo(line)
        return 0

    if _with_queue(loaded, run):
        typer.echo(f"no queued or retired message with id {msg_id}", err=True)
        raise typer.Exit(1)


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


Account = Annotated[str, typer.Argument(help="Account name.")]
EmailAddress = Annotated[str, typer.Argument(help="Recipient address, e.g. bob@example.org.")]


def _account(loaded: LoadedConfig, account: str) -> None:
    if account not in loaded.config.accounts:
        typer.echo(f"no account {account!r} in the config", err=True)
        raise typer.Exit(1)


@suppress_app.command("list")
def suppress_list(
    account: Annotated[str, typer.Argument(help="Account name; all accounts if omitted.")] = "",
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """List suppressed addresses: account, base address, original address, how, why."""
    loaded = load_or_exit(config)
    if account:
        _account(loaded, account)

    async def run(q: Queue) -> int:
        found = await q.suppression_list(account or None)
        if not found:
            typer.echo("suppression list is empty")
        for s in found:
            how = "manual" if s.manual else "automatic"
            typer.echo(
                f"{s.account}\t{s.base_address}\t{s.original_address}\t{s.created[:19]}\t"
                f"{how}\t{s.reason}"
            )
        return 0

    _with_queue(loaded, run)


@suppress_app.command("add")
def suppress_add(
    account: Account,
    address: EmailAddress,
    config: ConfigOption = Path("mox.toml"),
    reason: Annotated[str, typer.Option(help="Why, for the list.")] = "added by admin",
) -> None:
    """Refuse submissions from ACCOUNT to ADDRESS (and its +tag/-tag/dotted variants)."""
    loaded = load_or_exit(config)
    _account(loaded, account)

    async def run(q: Queue) -> int:
        try:
            s = await q.suppression_add(account, address, manual=True, reason=reason)
        except SuppressionError as exc:
            typer.echo(str(exc), err=True)
            return 1
        typer.echo(f"added {s.base_address} to the suppression list of {account}")
        return 0

    if _with_queue(loaded, run):
        raise typer.Exit(1)


@suppress_app.command("rm")
def suppress_rm(
    account: Account, address: EmailAddress, config: ConfigOption = Path("mox.toml")
) -> None:
    """Allow submissions from ACCOUNT to ADDRESS again."""
    loaded = load_or_exit(config)
    _account(loaded, account)

    async def run(q: Queue) -> int:
        try:
            removed = await q.suppression_remove(account, address)
        except SuppressionError as exc:
            typer.echo(str(exc), err=True)
            return 1
        if not removed:
            typer.echo(f"{address} is not on the suppression list of {account}", err=True)
            return 1
        typer.echo(f"removed {address} from the suppression list of {account}")
        return 0

    if _with_queue(loaded, run):
        raise typer.Exit(1)
