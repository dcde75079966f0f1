"""`mox account add|passwd|list|rm` against a real config file and store."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import tomlkit

from mox.auth.password import Credentials, verify_password
from mox.config.load import load_config
from mox.server.authenticator import ConfigAuthenticator
from mox.store import Store
from tests.conftest import MOX, minimal_config

pytestmark = pytest.mark.integration


def mox(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MOX, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def login(config: Path, username: str, password: str) -> str | None:
    async def run() -> str | None:
        loaded = load_config(config)
        store = Store(loaded.data_dir)
        try:
            auth = ConfigAuthenticator(loaded, store, failure_delay=0)
            return await auth.login(username, password, remote_ip="127.0.0.1", protocol="test")
        finally:
            await store.aclose()

    return asyncio.run(run())


def test_account_lifecycle(tmp_path: Path, mox_env: dict[str, str]) -> None:
    config = tmp_path / "mox.toml"
    config.write_text("# my mail server\n" + tomlkit.dumps(minimal_config()))
    res = mox(
        mox_env,
        "account",
        "add",
        "carol",
        "carol@example.test",
        "--config",
        str(config),
        "--password-stdin",
        stdin="s3cret pass\n",
    )
    assert res.returncode == 0, res.stderr
    text = config.read_text()
    assert text.startswith("# my mail server\n")  # comments kept
    assert "carol@example.test" in text
    assert "s3cret" not in text  # never in the config
    assert login(config, "carol@example.test", "s3cret pass") == "carol"
    assert login(config, "carol@example.test", "wrong") is None
    db = (tmp_path / "data" / "accounts" / "carol" / "index.db").read_bytes()
    assert b"s3cret" not in db

    res = mox(mox_env, "account", "list", "--config", str(config))
    assert res.stdout.splitlines() == ["alice\talice@example.test", "carol\tcarol@example.test"]

    res = mox(
        mox_env,
        "account",
        "passwd",
        "carol",
        "--config",
        str(config),
        "--password-stdin",
        stdin="another one\n",
    )
    assert res.returncode == 0, res.stderr
    assert login(config, "carol@example.test", "another one") == "carol"

    res = mox(
        mox_env,
        "account",
        "passwd",
        "carol",
        "--print",
        "--config",
        str(config),
        "--password-stdin",
        stdin="for a file\n",
    )
    creds = Credentials.from_text(res.stdout.strip())
    assert verify_password(creds, "for a file")

    res = mox(
        mox_env,
        "account",
        "add",
        "dave",
        "dave@nowhere.test",
        "--config",
        str(config),
        "--password-stdin",
        stdin="x\n",
    )
    assert res.returncode == 1
    assert "domain 'nowhere.test' is not in `domains`" in res.stderr
    assert "dave" not in config.read_text()  # a refused edit leaves the file alone

    res = mox(mox_env, "account", "rm", "carol", "--purge", "--config", str(config))
    assert res.returncode == 0, res.stderr
    assert "carol" not in config.read_text()
    assert not (tmp_path / "data" / "accounts" / "carol").exists()


def test_password_file_account(tmp_path: Path, mox_env: dict[str, str]) -> None:
    data = minimal_config()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "alice").write_text("")
    data["accounts"]["alice"]["password_file"] = "secrets/alice"
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    res = mox(
        mox_env,
        "account",
        "passwd",
        "alice",
        "--config",
        str(config),
        "--password-stdin",
        stdin="file based\n",
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "secrets" / "alice").stat().st_mode & 0o077 == 0
    assert login(config, "alice@example.test", "file based") == "alice"
