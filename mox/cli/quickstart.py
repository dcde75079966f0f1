"""`mox quickstart you@example.com`: config, keys, passwords, systemd unit, DNS records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mox.dns.resolver import DnsPythonResolver, parse_nameserver
from mox.quickstart import QuickstartError
from mox.quickstart import quickstart as run_quickstart

__all__ = ["quickstart"]


def quickstart(
    address: Annotated[str, typer.Argument(help="Your email address, e.g. you@example.com.")],
    hostname: Annotated[
        str | None,
        typer.Option(
            help="Host name of this mail server (default: the machine's, or mail.DOMAIN)."
        ),
    ] = None,
    ip: Annotated[
        list[str] | None,
        typer.Option("--ip", help="Public IP of this server; repeatable (default: detected)."),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--dir", help="Directory to write the installation into.")
    ] = Path(),
    user: Annotated[str, typer.Option(help="System user in the systemd unit.")] = "mox",
    acme: Annotated[
        bool,
        typer.Option(
            help="Certificates from Let's Encrypt (ACME); --no-acme writes a self-signed "
            "certificate and a signing request for the host key instead."
        ),
    ] = True,
    resolver: Annotated[
        str | None,
        typer.Option(
            help="Validating resolver IP[:PORT] for the DNS checks; without it, no lookups."
        ),
    ] = None,
) -> None:
    """Set up a new installation for your address, non-interactively, as mox's quickstart."""
    res = None
    if resolver is not None:
        try:
            res = DnsPythonResolver([parse_nameserver(resolver)], timeout=5.0)
        except ValueError as exc:
            typer.echo(f"--resolver: {exc}", err=True)
            raise typer.Exit(1) from None
    try:
        result = run_quickstart(
            address,
            directory,
            hostname=hostname,
            ips=ip or (),
            user=user,
            acme=acme,
            resolver=res,
        )
    except QuickstartError as exc:
        typer.echo(f"quickstart: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(result.output, nl=False)
