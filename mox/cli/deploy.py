"""`mox deploy HOST`: push a checked config to a host over SSH, swap it in, reload."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from mox.cli.common import ConfigOption
from mox.config.load import ConfigError

# mox.deploy.DEFAULT_RELOAD; kept here so that other commands do not import asyncssh.
DEFAULT_RELOAD = "systemctl restart mox.service"


def split_host(target: str) -> tuple[str | None, str]:
    """`user@host` or `host` (an IPv6 address may be in brackets)."""
    user, at, host = target.rpartition("@")
    host = host.removeprefix("[").removesuffix("]")
    return (user if at else None), host


def deploy_command(
    host: Annotated[str, typer.Argument(help="Target host, as HOST or USER@HOST.")],
    config: ConfigOption = Path("mox.toml"),
    port: Annotated[int, typer.Option(help="SSH port.")] = 22,
    identity: Annotated[
        list[Path] | None,
        typer.Option("--identity", "-i", help="SSH private key file; repeatable."),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(help="known_hosts file to verify the host key (default ~/.ssh/known_hosts)."),
    ] = None,
    remote_dir: Annotated[
        str, typer.Option(help="Directory of the config on the host.")
    ] = "/etc/mox",
    remote_mox: Annotated[
        str, typer.Option(help="The mox command on the host (shell words).")
    ] = "mox",
    reload_command: Annotated[
        str, typer.Option(help="Shell command on the host that makes mox use the new config.")
    ] = DEFAULT_RELOAD,
    resolver: Annotated[
        str | None,
        typer.Option(help="Run `mox dnscheck --resolver IP[:PORT]` on the host afterwards."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each step.")] = 60.0,
) -> None:
    """Check the config, upload it with its key files, check it on the host, swap it in
    atomically, reload, and report `mox dnscheck`; --dry-run only shows the diff."""
    from mox.deploy import DeployError, DeployOptions, deploy  # asyncssh loads only here

    user, hostname = split_host(host)
    options = DeployOptions(
        host=hostname,
        port=port,
        username=user,
        client_keys=identity or None,
        known_hosts=known_hosts,
        remote_dir=PurePosixPath(remote_dir),
        remote_mox=remote_mox,
        reload_command=reload_command,
        resolver=resolver,
        dry_run=dry_run,
        timeout=timeout,
    )
    try:
        asyncio.run(deploy(config, options, typer.echo))
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        typer.echo("mox deploy: the config does not pass `mox config check`", err=True)
        raise typer.Exit(1) from None
    except DeployError as exc:
        typer.echo(f"mox deploy: {exc}", err=True)
        raise typer.Exit(1) from None
