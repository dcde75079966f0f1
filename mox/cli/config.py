"""`mox config check|schema|describe`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mox.config.describe import describe as describe_text
from mox.config.load import ConfigError, load_config
from mox.config.schema import schema_json

app = typer.Typer(
    help="Check the config file, print its JSON Schema or an annotated example.",
    no_args_is_help=True,
)


@app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Config file to check.")],
    skip_file_checks: Annotated[
        bool,
        typer.Option(
            "--skip-file-checks",
            help="Do not require the files the config names to exist (for build-time checks, "
            "as in the Nix build, where keys are created at service start).",
        ),
    ] = False,
) -> None:
    """Validate a config file: exit 0, or print `FILE: key.path: message` lines and exit 1."""
    try:
        loaded = load_config(file, check_files=not skip_file_checks)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    cfg = loaded.config
    typer.echo(
        f"{file}: ok ({len(cfg.domains)} domains, {len(cfg.accounts)} accounts, "
        f"{len(cfg.listeners)} listeners)"
    )


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the config file format."""
    typer.echo(schema_json(), nl=False)


@app.command("describe")
def describe() -> None:
    """Print an annotated example config: every key with its meaning and default."""
    typer.echo(describe_text(), nl=False)
