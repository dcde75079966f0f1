"""SIGHUP makes a running `mox serve` re-read its config file without dropping connections.

A real server process: an IMAP session stays open across reloads; an account added to the file
can log in after SIGHUP; a broken file is refused (the server logs the problem with file and key
path and keeps serving with the running config); a listener change is logged as needing a restart.
"""

from __future__ import annotations

import imaplib
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from mox.auth.password import derive_credentials
from mox.config.load import load_config
from mox.server.ctl import request
from tests.conftest import MOX, free_port, minimal_config

pytestmark = [pytest.mark.integration]

PASSWORD = "reload-test-password"


def login_ok(port: int, user: str) -> bool:
    with imaplib.IMAP4("127.0.0.1", port, timeout=10) as client:
        try:
            client.login(user, PASSWORD)
        except imaplib.IMAP4.error:
            return False
        client.logout()
        return True


def wait_for(predicate: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def add_bob(data: dict[str, Any], passwords: Path, config: Path) -> None:
    """Account bob (alice's password file) added to the config data, and the file written."""
    data["accounts"]["bob"] = {
        "domain": "example.test",
        "destinations": {"bob@example.test": {}},
        "password_file": str(passwords),
    }
    config.write_text(tomlkit.dumps(data))


def serve(config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`mox serve` with its output in `log`, once it logged "ready" (killed if it did not)."""
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [*MOX, "serve", "--config", str(config)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "ready" in log.read_text(), "the server", timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def imap_config(tmp_path: Path) -> tuple[int, Path, dict[str, Any], Path]:
    """A config with IMAP on a free port and alice's password file: (port, password file, the
    config as data, its file)."""
    port = free_port()
    passwords = tmp_path / "alice.pw"
    passwords.write_text(derive_credentials(PASSWORD).to_text())
    data: dict[str, Any] = minimal_config()
    data["listeners"]["internal"]["imap"] = {"enabled": True, "port": port}
    data["accounts"]["alice"]["password_file"] = str(passwords)
    data["dns"] = {"nameservers": ["127.0.0.1:1"]}  # never the machine's resolver
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    return port, passwords, data, config


def test_sighup_applies_valid_config_and_refuses_broken_one(
    tmp_path: Path, mox_env: dict[str, str]
) -> None:
    port, passwords, data, config = imap_config(tmp_path)
    log = tmp_path / "serve.log"
    proc = serve(config, log, mox_env)
    try:
        session = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        session.login("alice@example.test", PASSWORD)
        assert not login_ok(port, "bob@example.test")

        # A new account in the file logs in after SIGHUP, with no restart.
        add_bob(data, passwords, config)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in log.read_text(), "the reload")
        assert login_ok(port, "bob@example.test")
        assert session.noop()[0] == "OK"  # the open session was not dropped

        # A broken file is refused; the running config (with bob) stays.
        good = config.read_bytes()
        data["accounts"]["bob"]["quota_bytes"] = "lots"
        config.write_text(tomlkit.dumps(data))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload refused" in log.read_text(), "the refusal")
        text = log.read_text()
        assert f"{config}: accounts.bob.quota_bytes:" in text
        assert login_ok(port, "bob@example.test")

        # Listener changes need a restart: applied nothing there, but said so.
        config.write_bytes(good)
        data["accounts"]["bob"].pop("quota_bytes")
        data["listeners"]["internal"]["imap"]["port"] = free_port()
        config.write_text(tomlkit.dumps(data))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "need a restart" in log.read_text(), "the restart warning")
        assert "sections=listeners" in log.read_text()
        assert login_ok(port, "alice@example.test")
        assert session.noop()[0] == "OK"
        session.logout()
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_mox_reload_command_answers_with_the_result(
    tmp_path: Path, mox_env: dict[str, str]
) -> None:
    """`mox reload` asks the running server over its control socket and prints the answer:
    exit 0 when applied (and which changes need a restart), 1 with the problems when refused,
    2 when no server runs."""
    port, passwords, data, config = imap_config(tmp_path)

    def reload() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MOX, "reload", "--config", str(config)],
            env=mox_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    none = reload()
    assert none.returncode == 2, none.stderr
    assert "no running server" in none.stderr

    log = tmp_path / "serve.log"
    proc = serve(config, log, mox_env)
    try:
        data_dir = load_config(config).data_dir
        assert (data_dir / "ctl").stat().st_mode & 0o077 == 0  # only the server's user
        assert not login_ok(port, "bob@example.test")
        add_bob(data, passwords, config)
        done = reload()
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "config reloaded"
        assert login_ok(port, "bob@example.test")  # applied before the answer came

        data["accounts"]["bob"]["quota_bytes"] = "lots"
        config.write_text(tomlkit.dumps(data))
        refused = reload()
        # The command checks the file first, with the server's own messages.
        assert refused.returncode == 1
        assert f"{config}: accounts.bob.quota_bytes:" in refused.stderr
        # The server refuses it too when asked directly (a file changed after the check).
        answer = request(data_dir, "reload")
        assert answer[0] == "refused"
        assert any(f"{config}: accounts.bob.quota_bytes:" in line for line in answer[1:])
        assert request(data_dir, "shutdown") == ["error unknown command"]
        assert login_ok(port, "bob@example.test")

        data["accounts"]["bob"].pop("quota_bytes")
        data["listeners"]["internal"]["imap"]["port"] = free_port()
        config.write_text(tomlkit.dumps(data))
        restart = reload()
        assert restart.returncode == 0, restart.stderr
        assert "need a restart were not applied: listeners" in restart.stdout
        assert login_ok(port, "alice@example.test")
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    gone = reload()
    assert gone.returncode == 2  # the socket went away with the server
