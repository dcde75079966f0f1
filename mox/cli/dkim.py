"""`mox dkim ensure-keys` and `mox dkim txt SELECTOR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mox.cli.common import ConfigOption, die
from mox.config.load import ConfigError, LoadedConfig, load_config
from mox.dkim.keys import KeyKind, generate_key, load_private_key, public_record, write_key

__all__ = ["app"]

app = typer.Typer(help="DKIM keys (RFC 6376, RFC 8463): create missing ones, print records.")


def _load(path: Path) -> LoadedConfig:
    try:
        return load_config(path, check_files=False)  # the key files may not exist yet
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from None


def key_kind(path: Path) -> KeyKind:
    """ed25519 when the file name says so (as mox names key files), else RSA-2048."""
    return "ed25519" if "ed25519" in path.name.lower() else "rsa2048"


@app.command("ensure-keys")
def ensure_keys(config: ConfigOption = Path("mox.toml")) -> None:
    """Create the private key file of every configured selector that has none yet.

    Existing files are never touched, so running it again changes nothing. The kind of key
    follows the file name: ed25519 when it contains "ed25519", else RSA-2048."""
    loaded = _load(config)
    created = 0
    for domain, dom in sorted(loaded.config.domains.items()):
        for selector, sel in sorted(dom.dkim.selectors.items()):
            path = loaded.resolve(sel.private_key_file)
            if path.exists():
                continue
            kind = key_kind(path)
            write_key(path, generate_key(kind))
            typer.echo(f"created {kind} key for {selector}._domainkey.{domain}: {path}")
            created += 1
    if not created:
        typer.echo("all DKIM keys exist")


@app.command("txt")
def txt(
    selector: Annotated[str, typer.Argument(help="Selector whose DNS record to print.")],
    domain: Annotated[
        str | None, typer.Option("--domain", help="Domain, when several have this selector.")
    ] = None,
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Print the TXT record of a selector's public key, as `NAME TXT "VALUE"`."""
    loaded = _load(config)
    found = [
        (name, dom.dkim.selectors[selector])
        for name, dom in sorted(loaded.config.domains.items())
        if selector in dom.dkim.selectors and (domain is None or name == domain.lower())
    ]
    if not found:
        raise die(f"mox dkim txt: no selector {selector!r} in the config")
    if len(found) > 1:
        names = ", ".join(n for n, _ in found)
        raise die(f"mox dkim txt: selector {selector!r} is used by {names}; give --domain")
    name, sel = found[0]
    path = loaded.resolve(sel.private_key_file)
    try:
        key = load_private_key(path)
    except (OSError, ValueError) as exc:
        raise die(f"mox dkim txt: {path}: {exc} (run `mox dkim ensure-keys`)") from None
    value = public_record(key).to_text()
    # TXT strings hold at most 255 bytes (RFC 1035 §3.3.14); the verifier joins them.
    parts = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    typer.echo(f"{selector}._domainkey.{name}. TXT {parts}")
