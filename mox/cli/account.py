"""`mox account add|passwd|list|rm`: accounts live in the config; their secrets in the store.

Adding or removing an account edits the config file in place (TOML comments are kept, by tomlkit),
but only after the edited config has passed the same checks as `mox config check`. A running
`mox serve` picks the change up at its next start.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import tomlkit
import typer

from mox.auth.password import derive_credentials
from mox.cli.common import ConfigOption, die, load_or_exit
from mox.config.load import ConfigError, LoadedConfig, parse_config
from mox.store import Store

app = typer.Typer(help="Manage accounts: add, change password, list, remove.", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the new password from standard input.")
]


def _read_doc(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix.lower() == ".json" else tomlkit.parse(text)


def _write_checked(path: Path, doc: Any) -> LoadedConfig:
    """Check the edited config, then replace the file atomically."""
    if path.suffix.lower() == ".json":
        text = json.dumps(doc, indent=2) + "\n"
        plain = doc
    else:
        text = tomlkit.dumps(doc)
        plain = tomlkit.parse(text).unwrap()
    try:
        loaded = parse_config(plain, path)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return loaded


def _new_password(stdin: bool) -> tuple[str, bool]:
    """The password to set, and whether it was generated (and must be shown)."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise die("no password on standard input")
        return password, False
    if sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        return password, False
    return secrets.token_urlsafe(12), True


async def _set_password(loaded: LoadedConfig, name: str, password: str) -> None:
    creds = derive_credentials(password)
    acc_cfg = loaded.config.accounts[name]
    if acc_cfg.password_file is not None:
        path = loaded.resolve(acc_cfg.password_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(creds.to_text() + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return
    store = Store(loaded.data_dir)
    try:
        await store.account(name).set_credentials(creds)
    finally:
        await store.aclose()


@app.command("list")
def list_accounts(config: ConfigOption = Path("mox.toml")) -> None:
    """List accounts and their addresses."""
    loaded = load_or_exit(config)
    for name, acc in sorted(loaded.config.accounts.items()):
        typer.echo(f"{name}\t{' '.join(acc.destinations)}")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Account name, e.g. alice.")],
    address: Annotated[str, typer.Argument(help="First address, e.g. alice@example.com.")],
    config: ConfigOption = Path("mox.toml"),
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an account to the config, create its mailboxes and set its password."""
    loaded = load_or_exit(config)
    if name in loaded.config.accounts:
        raise die(f"account {name!r} already exists")
    domain = address.rpartition("@")[2]
    doc = _read_doc(config)
    accounts = doc.setdefault("accounts", {})
    entry: dict[str, Any] = {"domain": domain, "destinations": {address: {}}}
    accounts[name] = entry
    loaded = _write_checked(config, doc)
    password, generated = _new_password(password_stdin)
    asyncio.run(_set_password(loaded, name, password))
    typer.echo(f"account {name!r} added with address {address}")
    if generated:
        typer.echo(f"password: {password}")


@app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="Account name.")],
    config: ConfigOption = Path("mox.toml"),
    password_stdin: PasswordStdin = False,
    print_only: Annotated[
        bool,
        typer.Option(
            "--print", help="Print the derived secrets for a password_file; store nothing."
        ),
    ] = False,
) -> None:
    """Set an account's password; only a slow hash and SCRAM/CRAM-MD5 secrets are stored."""
    loaded = load_or_exit(config)
    if name not in loaded.config.accounts:
        raise die(f"no account {name!r} in {config}")
    password, generated = _new_password(password_stdin)
    if print_only:
        typer.echo(derive_credentials(password).to_text())
        return
    asyncio.run(_set_password(loaded, name, password))
    typer.echo(f"password of {name!r} changed")
    if generated:
        typer.echo(f"password: {password}")


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="Account name.")],
    config: ConfigOption = Path("mox.toml"),
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the account's messages and database.")
    ] = False,
) -> None:
    """Remove an account from the config (its messages are kept unless --purge)."""
    loaded = load_or_exit(config)
    if name not in loaded.config.accounts:
        raise die(f"no account {name!r} in {config}")
    if loaded.config.postmaster == name:
        raise die(f"account {name!r} is the postmaster; change `postmaster` first")
    doc = _read_doc(config)
    del doc["accounts"][name]
    loaded = _write_checked(config, doc)
    data = loaded.data_dir / "accounts" / name
    if purge and data.exists():
        shutil.rmtree(data)
        typer.echo(f"account {name!r} removed, data deleted")
    else:
        typer.echo(f"account {name!r} removed; its data stays in {data}")
