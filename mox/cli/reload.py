"""`mox reload`: ask the running `mox serve` to re-read its config file (as SIGHUP), over the
control socket in its data directory (mox.server.ctl), and print what it answered."""

from __future__ import annotations

from pathlib import Path

import typer

from mox.cli.common import ConfigOption, die, load_or_exit
from mox.server.ctl import request

__all__ = ["reload"]


def reload(config: ConfigOption = Path("mox.toml")) -> None:
    """Make the running server re-read its config and certificate files. Exit 0 when applied,
    1 when the new config was refused (its problems are printed; the running config stays),
    2 when no server answers."""
    loaded = load_or_exit(config)  # the same check the server makes, with the same messages
    try:
        answer = request(loaded.data_dir, "reload")
    except OSError as exc:
        where = loaded.data_dir / "ctl"
        raise die(f"mox reload: no running server answers at {where}: {exc}", 2) from None
    if answer[:1] == ["ok"]:
        typer.echo("config reloaded")
        for line in answer[1:]:
            if line.startswith("restart-needed "):
                sections = ", ".join(line.split()[1:])
                typer.echo(f"changes that need a restart were not applied: {sections}")
        return
    if answer[:1] == ["refused"]:
        typer.echo("config refused; the server keeps running with its current config:", err=True)
        for line in answer[1:]:
            typer.echo(line, err=True)
        raise typer.Exit(1)
    raise die(f"mox reload: unexpected answer: {' '.join(answer) or '(none)'}", 2)
