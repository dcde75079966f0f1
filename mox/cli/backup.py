"""`mox backup DESTDIR` and `mox verifydata DATADIR` (mox's backup and verifydata)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mox.cli.common import ConfigOption, die, load_or_exit


def backup(
    destdir: Annotated[Path, typer.Argument(help="New (or empty) directory for the backup.")],
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Copy config and data consistently, also while `mox serve` runs (SQLite backup API for the
    databases, hard links for message files)."""
    from mox.store.backup import backup as run_backup

    loaded = load_or_exit(config)
    try:
        result = run_backup(loaded.path, loaded.data_dir, destdir)
    except (FileExistsError, OSError) as exc:
        raise die(f"mox backup: {exc}") from None
    typer.echo(
        f"backup written to {result.dest}: {result.databases} databases, "
        f"{result.linked} files linked, {result.copied} copied, "
        f"{result.vanished} removed during the backup"
    )
    typer.echo(f"check it with: mox verifydata {result.data_dest}")


def verifydata(
    datadir: Annotated[Path, typer.Argument(help="Data directory: a live one or a backup.")],
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Move orphan message files aside (to <account>/orphaned/). Only with the "
            "server stopped, or on a backup.",
        ),
    ] = False,
) -> None:
    """Check databases (integrity, UIDs, UIDVALIDITY) and message files (present, right size,
    no orphans). Exit 0 when clean, 1 when problems were found."""
    from mox.store.verify import verify_data

    report = verify_data(datadir, fix=fix)
    for problem in report.problems:
        typer.echo(str(problem))
    for path in report.moved:
        typer.echo(f"moved aside: {path}")
    typer.echo(
        f"checked {report.databases} databases, {report.accounts} accounts, "
        f"{report.messages} messages: {len(report.problems)} problems",
        err=not report.ok,
    )
    if not report.ok:
        raise typer.Exit(1)
