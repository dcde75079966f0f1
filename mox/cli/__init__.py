"""The `mox` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from mox import __version__
from mox.cli import account, config, serve

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
app.command("serve")(serve.serve)
app.command("localserve")(serve.localserve)


@app.command("version")
def version() -> None:
    """Print the version of mox."""
    typer.echo(__version__)


def main() -> None:
    app()
