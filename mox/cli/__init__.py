"""The `mox` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from mox import __version__
from mox.cli import account, config, serve
from mox.cli import admin as admin_cli
from mox.cli import backup as backup_cli
from mox.cli import deploy as deploy_cli
from mox.cli import dkim as dkim_cli
from mox.cli import dmarc as dmarc_cli
from mox.cli import dns as dns_cli
from mox.cli import importexport as importexport_cli
from mox.cli import junk as junk_cli
from mox.cli import queue as queue_cli
from mox.cli import quickstart as quickstart_cli
from mox.cli import reload as reload_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="mox",
    help="mox: a complete, secure, low-maintenance mail server driven by one declarative config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(account.app, name="account")
app.add_typer(admin_cli.app, name="admin")
app.add_typer(queue_cli.app, name="queue")
app.command("serve")(serve.serve)
app.command("localserve")(serve.localserve)
app.command("reload")(reload_cli.reload)
app.add_typer(dns_cli.app, name="dns")
app.add_typer(dkim_cli.app, name="dkim")
app.add_typer(dmarc_cli.app, name="dmarc")
app.command("dnscheck")(dns_cli.dnscheck)
app.command("quickstart")(quickstart_cli.quickstart)
app.command("deploy")(deploy_cli.deploy_command)
app.command("backup")(backup_cli.backup)
app.command("verifydata")(backup_cli.verifydata)
app.add_typer(importexport_cli.import_app, name="import")
app.add_typer(importexport_cli.export_app, name="export")
app.add_typer(junk_cli.app, name="junk")


@app.command("version")
def version() -> None:
    """Print the version of mox."""
    typer.echo(__version__)


def main() -> None:
    app()
