"""`mox import mbox|maildir ACCOUNT MAILBOX PATH` and `mox export mbox|maildir ACCOUNT DESTDIR
[MAILBOX]`: see mox.store.importexport. Progress goes to stderr.

The commands open the account's store directly. That is consistent also while `mox serve` runs
(SQLite serialises the writers), but open IMAP sessions learn of imported messages only when they
next select the mailbox.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from mox.cli.common import ConfigOption, die, load_or_exit

import_app = typer.Typer(help="Import mbox or Maildir into a mailbox.", no_args_is_help=True)
export_app = typer.Typer(help="Export mailboxes as mbox or Maildir.", no_args_is_help=True)

Format = Literal["mbox", "maildir"]


class _Progress:
    """A one-line counter on stderr, redrawn at most 5 times a second."""

    def __init__(self, total: int, verb: str) -> None:
        self.total = total
        self.verb = verb
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, skipped: int, nbytes: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        pct = f" {100 * nbytes // self.total}%" if self.total else ""
        extra = f", {skipped} already there" if skipped else ""
        line = f"{self.verb} {done}{extra}, {nbytes // 1024} KiB{pct}"
        if self.tty:
            sys.stderr.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
        elif final:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _import(kind: Format, account: str, mailbox: str, path: Path, config: Path) -> None:
    from mox.store import Store
    from mox.store.importexport import import_maildir, import_mbox

    loaded = load_or_exit(config)
    if account not in loaded.config.accounts:
        raise die(f"mox import: no account {account!r} in {config}")
    if kind == "mbox":
        total = path.stat().st_size if path.is_file() else 0
    else:
        total = sum(p.stat().st_size for s in ("cur", "new") for p in (path / s).glob("*"))
    progress = _Progress(total, "imported")

    async def run() -> None:
        async with Store(loaded.data_dir) as store:
            acc = store.account(account)
            fn = import_mbox if kind == "mbox" else import_maildir
            result = await fn(acc, mailbox, path, progress)
            progress(result.imported, result.skipped, total, final=True)
            if result.too_large:
                typer.echo(f"{result.too_large} messages too large, not imported", err=True)

    try:
        asyncio.run(run())
    except OSError as exc:
        raise die(f"mox import: {exc}") from None


def _export(kind: Format, account: str, destdir: Path, mailbox: str | None, config: Path) -> None:
    from mox.store import Store
    from mox.store.importexport import export_maildir, export_mbox

    loaded = load_or_exit(config)
    if account not in loaded.config.accounts:
        raise die(f"mox export: no account {account!r} in {config}")
    progress = _Progress(0, "exported")

    async def run() -> int:
        async with Store(loaded.data_dir) as store:
            acc = store.account(account)
            fn = export_mbox if kind == "mbox" else export_maildir
            return fn(acc, destdir, mailbox, progress)

    try:
        n = asyncio.run(run())
    except OSError as exc:
        raise die(f"mox export: {exc}") from None
    progress(n, 0, 0, final=True)


AccountArg = Annotated[str, typer.Argument(help="Account name.")]
MailboxArg = Annotated[str, typer.Argument(help="Mailbox to import into (created if missing).")]


@import_app.command("mbox")
def import_mbox_cmd(
    account: AccountArg,
    mailbox: MailboxArg,
    path: Annotated[Path, typer.Argument(help="mbox file.")],
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Import an mbox file (mboxrd; Status/X-Status/X-Keywords become flags). Resumable."""
    _import("mbox", account, mailbox, path, config)


@import_app.command("maildir")
def import_maildir_cmd(
    account: AccountArg,
    mailbox: MailboxArg,
    path: Annotated[Path, typer.Argument(help="Maildir (with cur/ and new/).")],
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Import a Maildir (info flags and dovecot-keywords become flags). Resumable."""
    _import("maildir", account, mailbox, path, config)


DestArg = Annotated[Path, typer.Argument(help="Directory to write to.")]
OneMailbox = Annotated[str | None, typer.Argument(help="Only this mailbox (default: all).")]


@export_app.command("mbox")
def export_mbox_cmd(
    account: AccountArg,
    destdir: DestArg,
    mailbox: OneMailbox = None,
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Write mailboxes as DESTDIR/<mailbox>.mbox (mboxrd, flags in Status/X-Status)."""
    _export("mbox", account, destdir, mailbox, config)


@export_app.command("maildir")
def export_maildir_cmd(
    account: AccountArg,
    destdir: DestArg,
    mailbox: OneMailbox = None,
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Write mailboxes as Maildirs DESTDIR/<mailbox>/ (flags in the file names)."""
    _export("maildir", account, destdir, mailbox, config)
