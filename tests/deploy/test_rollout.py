"""The Ansible rollout, for real: ansible-playbook connects over SSH to Debian's sshd on loopback,
the role installs mox from a wheel of this checkout into a virtualenv, writes the config checked by
`mox config check`, creates keys and the unit; then `mox serve` from the deployed tree accepts a
message over SMTP and serves it over IMAP. A second run changes nothing; a broken inventory value
fails at the `validate:` step and leaves the deployed config as it was.

Everything the role writes lives under a temporary directory (role variables); no systemd here, so
`mox_manage_service` is false and the test starts the server itself.
"""

from __future__ import annotations

import copy
import imaplib
import json
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.deploy.ansible_run import (
    TARGET_PYTHON,
    PlayResult,
    build_wheel,
    run_playbook,
    write_inventory,
)
from tests.deploy.sshd import Sshd, start_sshd

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PASSWORD = "rollout-password-1"
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: deployed by ansible\r\n"
    b"Message-Id: <rollout-1@example.test>\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n"
    b"\r\n"
    b"served by the deployed tree\r\n"
)


def dkim_ensure_keys_available() -> bool:
    """`mox dkim ensure-keys` comes with the mail authentication work; use it once it exists."""
    res = subprocess.run(
        [sys.executable, "-m", "mox", "dkim", "ensure-keys", "--help"],
        capture_output=True,
        timeout=60,
    )
    return res.returncode == 0


@dataclass
class Rollout:
    work: Path
    sshd: Sshd
    inventory: Path
    variables: dict[str, Any]
    first: PlayResult
    ports: dict[str, int]
    dkim: bool

    @property
    def root(self) -> Path:
        return self.work / "target"

    @property
    def config(self) -> Path:
        return self.root / "etc" / "mox.json"

    @property
    def mox(self) -> Path:
        return self.root / "opt" / "venv" / "bin" / "mox"


def rollout_vars(root: Path, wheel: Path, ports: dict[str, int], dkim: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "postmaster": "alice",
        "listeners": {
            "local": {
                "ips": ["127.0.0.1"],
                "smtp": {"enabled": True, "port": ports["smtp"]},
                "submission": {
                    "enabled": True,
                    "port": ports["submission"],
                    "require_starttls": False,
                },
                "imap": {"enabled": True, "port": ports["imap"], "require_starttls": False},
            }
        },
        "domains": {"example.test": {}},
        # DNS only on loopback, where nothing answers: tests never ask the machine's resolver.
        "dns": {"nameservers": ["127.0.0.1:9"], "timeout": 0.5},
        "accounts": {
            "alice": {"domain": "example.test", "destinations": {"alice@example.test": {}}}
        },
    }
    if dkim:
        key = str(root / "etc" / "dkim" / "2026a._domainkey.example.test.rsa2048.pkcs8.pem")
        settings["domains"]["example.test"]["dkim"] = {
            "sign": ["2026a"],
            "selectors": {"2026a": {"private_key_file": key}},
        }
    return {
        "mox_install_dir": str(root / "opt"),
        "mox_config_dir": str(root / "etc"),
        "mox_data_dir": str(root / "data"),
        "mox_python": TARGET_PYTHON,
        "mox_package_file": str(wheel),
        "mox_manage_user": False,
        "mox_user": "root",
        "mox_group": "root",
        "mox_manage_service": False,
        "mox_systemd_unit_path": str(root / "mox.service"),
        "mox_hostname": "mail.example.test",
        "mox_public_ips": ["192.0.2.10"],
        "mox_dkim_ensure_keys": dkim,
        "mox_settings": settings,
    }


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rollout]:
    work = tmp_path_factory.mktemp("rollout")
    sshd = start_sshd(work / "sshd")
    try:
        wheel = build_wheel(work / "dist")
        inventory = write_inventory(work, sshd)
        ports = {k: free_port() for k in ("smtp", "submission", "imap")}
        dkim = dkim_ensure_keys_available()
        variables = rollout_vars(work / "target", wheel, ports, dkim)
        first = run_playbook(work, inventory, variables)
        yield Rollout(work, sshd, inventory, variables, first, ports, dkim)
    finally:
        sshd.stop()


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mox serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"port {port} not listening after 60 s:\n{log.read_text()}")


def test_first_run_installs_and_configures(rollout: Rollout) -> None:
    assert rollout.first.returncode == 0, rollout.first.output[-6000:]
    recap = rollout.first.recap()
    assert recap["failed"] == 0
    assert recap["unreachable"] == 0
    assert recap["changed"] > 0
    data = json.loads(rollout.config.read_text())
    assert data["hostname"] == "mail.example.test"
    assert data["data_dir"] == str(rollout.root / "data")
    assert data["listeners"]["local"]["smtp"]["port"] == rollout.ports["smtp"]
    check = subprocess.run(
        [str(rollout.mox), "config", "check", str(rollout.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    for name in ("host-ecdsa-p256.pkcs8.pem", "host-rsa2048.pkcs8.pem"):
        key = rollout.root / "etc" / "dane" / name
        assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
        assert key.stat().st_mode & 0o777 == 0o640
    unit = (rollout.root / "mox.service").read_text()
    assert f"ExecStart={rollout.mox} serve --config {rollout.config}" in unit
    assert "ProtectSystem=strict" in unit
    assert "NoNewPrivileges=yes" in unit
    # The final task printed `mox dns zone`: the MX record for the domain.
    assert "MX" in rollout.first.output
    assert "mail.example.test." in rollout.first.output
    if rollout.dkim:
        dkim_key = rollout.root / "etc" / "dkim" / "2026a._domainkey.example.test.rsa2048.pkcs8.pem"
        assert dkim_key.is_file()


def test_deployed_tree_serves_mail(rollout: Rollout) -> None:
    assert rollout.first.returncode == 0, rollout.first.output[-6000:]
    passwd = subprocess.run(
        [
            str(rollout.mox),
            "account",
            "passwd",
            "alice",
            "--password-stdin",
            "--config",
            str(rollout.config),
        ],
        input=PASSWORD,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert passwd.returncode == 0, passwd.stderr
    log = rollout.work / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(rollout.mox), "serve", "--config", str(rollout.config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for port in rollout.ports.values():
            wait_port(port, proc, log)
        with smtplib.SMTP("127.0.0.1", rollout.ports["submission"], timeout=30) as smtp:
            smtp.login("alice@example.test", PASSWORD)
            refused = smtp.sendmail("alice@example.test", ["alice@example.test"], MESSAGE)
            assert refused == {}
        with imaplib.IMAP4("127.0.0.1", rollout.ports["imap"], timeout=30) as imap:
            imap.login("alice@example.test", PASSWORD)
            typ, _ = imap.select("Inbox")
            assert typ == "OK"
            typ, found = imap.search(None, "SUBJECT", '"deployed by ansible"')
            assert typ == "OK"
            assert found[0], found
            typ, fetched = imap.fetch(found[0].split()[0], "(BODY.PEEK[TEXT])")
            assert typ == "OK"
            body = fetched[0]
            assert isinstance(body, tuple)
            assert body[1] == b"served by the deployed tree\r\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_second_run_changes_nothing(rollout: Rollout) -> None:
    assert rollout.first.returncode == 0, rollout.first.output[-6000:]
    second = run_playbook(rollout.work, rollout.inventory, rollout.variables)
    assert second.returncode == 0, second.output[-6000:]
    recap = second.recap()
    assert recap["changed"] == 0, second.output[-6000:]
    assert recap["failed"] == 0


def test_broken_value_fails_at_validate_and_keeps_config(rollout: Rollout) -> None:
    assert rollout.first.returncode == 0, rollout.first.output[-6000:]
    before = rollout.config.read_bytes()
    before_mtime = rollout.config.stat().st_mtime_ns
    broken = copy.deepcopy(rollout.variables)
    broken["mox_settings"]["listeners"]["local"]["smtp"]["port"] = "abc"
    result = run_playbook(rollout.work, rollout.inventory, broken)
    assert result.returncode != 0
    assert result.recap()["failed"] == 1
    # It failed at the template's validate step, with mox config check's own message.
    assert "Write the config, checked by mox config check" in result.output
    assert "failed to validate" in result.output, result.output[-4000:]
    assert "listeners.local.smtp.port" in result.output
    assert rollout.config.read_bytes() == before
    assert rollout.config.stat().st_mtime_ns == before_mtime
