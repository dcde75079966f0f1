"""`mox junk train|check|retrain`: the per-account Bayesian junk filter from the command line.

`train` learns from message files (or directories of them, Maildir included), `check` prints the
spam probability and the strongest words of messages, `eval` measures precision, recall and the
false-positive rate on labelled mail, `retrain` rebuilds the filter and the
reputation history from the $Junk/$NotJunk flags of all messages in the account, as mox's
`mox junk retrain`. Run `train` and `retrain` while `mox serve` is stopped: the server keeps the
filter's bloom filter in memory.
"""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path
from typing import Annotated

import typer

from mox.cli.common import ConfigOption, die, load_or_exit
from mox.config.load import LoadedConfig
from mox.config.model import JunkFilter
from mox.junk.bayes import BLOOM_NAME, DB_NAME, Filter
from mox.junk.evaluate import evaluate, read_messages
from mox.junk.train import sync_message
from mox.store import Store

app = typer.Typer(
    help="Train and check the Bayesian junk filter of an account.", no_args_is_help=True
)

AccountArg = Annotated[str, typer.Argument(help="Account name.")]
Paths = Annotated[
    list[Path] | None,
    typer.Option(help="Message file, or directory of message files (searched recursively)."),
]


def _params(loaded: LoadedConfig, account: str) -> JunkFilter:
    acc = loaded.config.accounts.get(account)
    if acc is None:
        raise die(f"no account {account!r} in the config")
    return acc.junk_filter or JunkFilter()


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise die(f"{p}: no such file or directory")
    return out


def _account_dir(loaded: LoadedConfig, account: str) -> Path:
    return loaded.data_dir / "accounts" / account


@app.command("train")
def train(
    account: AccountArg,
    ham: Paths = None,
    spam: Paths = None,
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Train the account's filter with ham and spam message files."""
    loaded = load_or_exit(config)
    params = _params(loaded, account)
    hams, spams = _files(ham or []), _files(spam or [])
    if not hams and not spams:
        raise die("nothing to train: give --ham and/or --spam")
    filt = Filter(_account_dir(loaded, account), params)
    try:
        for path in hams:
            filt.train(path.read_bytes(), "ham")
        for path in spams:
            filt.train(path.read_bytes(), "spam")
        nham, nspam = filt.counts()
    finally:
        filt.close()
    typer.echo(f"trained {len(hams)} ham, {len(spams)} spam; filter has {nham} ham, {nspam} spam")


@app.command("check")
def check(
    account: AccountArg,
    files: Annotated[list[Path], typer.Argument(help="Message files to classify.")],
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """Print the spam probability and strongest words of each message."""
    loaded = load_or_exit(config)
    params = _params(loaded, account)
    filt = Filter(_account_dir(loaded, account), params)
    try:
        for path in _files(files):
            result = filt.classify(path.read_bytes())
            verdict = "junk" if result.probability > params.threshold else "ham"
            sig = "" if result.significant else " (not significant: too little ham trained)"
            typer.echo(f"{path}: {verdict}, {result.describe()}{sig}")
    finally:
        filt.close()


@app.command("retrain")
def retrain(account: AccountArg, config: ConfigOption = Path("mox.toml")) -> None:
    """Rebuild the filter from the $Junk/$NotJunk flags of every message in the account."""
    loaded = load_or_exit(config)
    params = _params(loaded, account)
    directory = _account_dir(loaded, account)

    async def run() -> int:
        async with Store(loaded.data_dir) as store:
            acc = store.account(account)
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", BLOOM_NAME):
                (directory / name).unlink(missing_ok=True)
            filt = Filter(directory, params)
            count = 0
            try:
                for box in acc.list_mailboxes():
                    for msg in acc.list_messages(box.id):
                        count += sync_message(acc, filt, msg)
            finally:
                filt.close()
            return count

    count = asyncio.run(run())
    typer.echo(f"retrained from {count} flagged messages")


@app.command("eval")
def eval_command(
    ham: Annotated[Path, typer.Option(help="Ham: a Maildir, a directory of files or an mbox.")],
    spam: Annotated[Path, typer.Option(help="Spam: a Maildir, a directory of files or an mbox.")],
    train_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="Part of each set used for training.")
    ] = 0.5,
    threshold: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Spam probability above which mail is junk.")
    ] = JunkFilter().threshold,
    seed: Annotated[int, typer.Option(help="Seed of the shuffle that splits the sets.")] = 1,
) -> None:
    """Train on part of labelled mail, classify the rest; print precision, recall and the
    false-positive rate (no account or server needed)."""
    try:
        hams, spams = list(read_messages(ham)), list(read_messages(spam))
    except (OSError, mailbox.Error) as exc:
        raise die(f"reading messages: {exc}") from None
    if len(hams) < 2 or len(spams) < 2:
        raise die("need at least 2 ham and 2 spam messages")
    params = JunkFilter(threshold=threshold)
    result = evaluate(hams, spams, params=params, train_fraction=train_fraction, seed=seed)
    typer.echo(result.report())
