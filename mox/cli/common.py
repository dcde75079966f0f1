"""Shared by the command modules: the --config option, config loading with clean errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mox.config.load import ConfigError, LoadedConfig, load_config

__all__ = ["ConfigOption", "die", "load_or_exit"]

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="MOXCONF", help="Config file (TOML, or JSON by .json suffix)."
    ),
]


def die(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def load_or_exit(path: Path) -> LoadedConfig:
    """Load a config; on problems print one `FILE: key.path: message` line each and exit 1."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
