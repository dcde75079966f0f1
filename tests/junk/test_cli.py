"""`mox junk train|check|retrain` against a real config file and store."""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path

import tomlkit
from typer.testing import CliRunner

from mox.cli import app
from mox.config.load import load_config
from mox.junk.bayes import Filter
from mox.store import Store
from tests.conftest import minimal_config
from tests.junk import corpus


def write(directory: Path, messages: list[bytes]) -> Path:
    directory.mkdir()
    for i, m in enumerate(messages):
        (directory / f"{i}.eml").write_bytes(m)
    return directory


def test_train_check_retrain(tmp_path: Path) -> None:
    data = minimal_config()
    data["accounts"]["alice"]["junk_filter"] = {"threshold": 0.9}
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    runner = CliRunner()
    ham = write(tmp_path / "ham", corpus.ham(55, seed=20))
    spam = write(tmp_path / "spam", corpus.spam(25, seed=21))
    res = runner.invoke(
        app, ["junk", "train", "alice", "--ham", str(ham), "--spam", str(spam), "-c", str(config)]
    )
    assert res.exit_code == 0, res.output
    assert "trained 55 ham, 25 spam" in res.output
    new_spam = tmp_path / "new-spam.eml"
    new_spam.write_bytes(corpus.spam(1, seed=22)[0])
    new_ham = tmp_path / "new-ham.eml"
    new_ham.write_bytes(corpus.ham(1, seed=23)[0])
    res = runner.invoke(
        app, ["junk", "check", "alice", str(new_spam), str(new_ham), "-c", str(config)]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{new_spam}: junk, junk probability")
    assert lines[1].startswith(f"{new_ham}: ham, junk probability")

    loaded = load_config(config)

    async def flag() -> None:
        async with Store(loaded.data_dir) as store:
            acc = store.account("alice")
            for m in corpus.spam(3, seed=24):
                await acc.deliver("Junk", m, flags=["$Junk"])
            await acc.deliver("Archive", corpus.ham(1, seed=25)[0], flags=["$NotJunk"])
            await acc.deliver("Inbox", corpus.ham(1, seed=26)[0])

    asyncio.run(flag())
    res = runner.invoke(app, ["junk", "retrain", "alice", "-c", str(config)])
    assert res.exit_code == 0, res.output
    assert "retrained from 4 flagged messages" in res.output
    f = Filter(loaded.data_dir / "accounts" / "alice")
    try:
        assert f.counts() == (1, 3)  # the files trained earlier are forgotten
        rows = f.conn.execute("SELECT kind, count(*) FROM trained GROUP BY kind").fetchall()
        assert sorted(rows) == [("ham", 1), ("spam", 3)]
    finally:
        f.close()
    res = runner.invoke(app, ["junk", "check", "bob", str(new_ham), "-c", str(config)])
    assert res.exit_code == 1


def test_eval_maildir_and_mbox(tmp_path: Path) -> None:
    maildir = tmp_path / "ham"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, m in enumerate(corpus.ham(80, seed=30)):
        (maildir / ("cur" if i % 2 else "new") / f"{i}.host:2,S").write_bytes(m)
    mbox = tmp_path / "spam.mbox"
    box = mailbox.mbox(str(mbox))
    for m in corpus.spam(60, seed=31):
        box.add(m)
    box.close()
    res = CliRunner().invoke(app, ["junk", "eval", "--ham", str(maildir), "--spam", str(mbox)])
    assert res.exit_code == 0, res.output
    values = dict(
        line.rsplit(" ", 1)
        for line in res.output.splitlines()
        if line.startswith(("prec", "rec", "false pos"))
    )
    assert "trained on 40 ham and 30 spam, tested 70" in res.output
    assert float(values["precision"]) >= 0.95
    assert float(values["recall"]) >= 0.9
    assert float(values["false positive rate"]) <= 0.05
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["junk", "eval", "--ham", str(empty), "--spam", str(mbox)])
    assert res.exit_code == 1
