"""`mox admin passwd`: set the password of the admin pages.

The config's `admin_password_file` names the file; it gets the derived credentials of the new
password (the same one-line format as an account's `password_file`, mox.auth.password), written
atomically and readable by the owner only. A running server reads the file at each admin login,
so the change applies at once.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from mox.auth.password import derive_credentials
from mox.cli.common import ConfigOption, die
from mox.config.load import ConfigError, load_config

__all__ = ["app"]

app = typer.Typer(help="The admin web pages.", no_args_is_help=True)


def write_credentials(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command("passwd")
def passwd(
    config: ConfigOption = Path("mox.toml"),
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
    ] = False,
) -> None:
    """Set the admin password (a random one is generated and printed when not interactive)."""
    try:
        # The password file may not exist yet: that is what this command is for.
        loaded = load_config(config, check_files=False)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    name = loaded.config.admin_password_file
    if name is None:
        raise die(
            f"{config}: admin_password_file is not set; add e.g. "
            '`admin_password_file = "adminpasswd"` to enable the admin pages'
        )
    generated = False
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise die("no password on standard input")
    elif sys.stdin.isatty():
        password = typer.prompt("New admin password", hide_input=True, confirmation_prompt=True)
    else:
        password, generated = secrets.token_urlsafe(12), True
    path = loaded.resolve(name)
    try:
        write_credentials(path, derive_credentials(password).to_text())
    except OSError as exc:
        raise die(f"cannot write {path}: {exc}") from None
    typer.echo(f"admin password written to {path}")
    if generated:
        typer.echo(f"password: {password}")
