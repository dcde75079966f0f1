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


def test_sighup_applies_valid_config_and_refuses_broken_one(
    tmp_path: Path, mox_env: dict[str, str]
) -> None:
    port = free_port()
    passwords = tmp_path / "alice.pw"
    passwords.write_text(derive_credentials(PASSWORD).to_text())
    data: dict[str, Any] = minimal_config()
    data["listeners"]["internal"]["imap"] = {"enabled": True, "port": port}
    data["accounts"]["alice"]["password_file"] = str(passwords)
    data["dns"] = {"nameservers": ["127.0.0.1:1"]}  # never the machine's resolver
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [*MOX, "serve", "--config", str(config)],
            env=mox_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        start_deadline = time.monotonic() + 30
        while not log.read_text().count("ready") and time.monotonic() < start_deadline:
            time.sleep(0.05)
        assert "ready" in log.read_text()
        session = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        session.login("alice@example.test", PASSWORD)
        assert not login_ok(port, "bob@example.test")

        # A new account in the file logs in after SIGHUP, with no restart.
        data["accounts"]["bob"] = {
            "domain": "example.test",
            "destinations": {"bob@example.test": {}},
            "password_file": str(passwords),
        }
        config.write_text(tomlkit.dumps(data))
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
