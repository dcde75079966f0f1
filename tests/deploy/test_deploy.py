"""`mox deploy` against an SSH server in the test process: asyncssh serves SFTP on the local file
system and runs each command locally, so the "host" is a temporary directory. The reload command
restarts a real `mox serve` on the deployed config, and the test checks with smtplib and imaplib
that the new config is in force.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import signal
import smtplib
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import asyncssh
import pytest
import tomlkit

from mox.auth.password import derive_credentials
from mox.config.load import ConfigError, parse_config
from mox.deploy import DEFAULT_RELOAD, DeployError, DeployOptions, deploy, files_to_push
from tests.conftest import MOX, free_port, minimal_config

PASSWORD = "deploy-password-1"
PY = f"{sys.executable} -m mox"


@dataclass
class SshServer:
    port: int
    client_key: Path
    known_hosts: Path
    commands: list[str] = field(default_factory=list)


@pytest.fixture
async def ssh_server(tmp_path: Path) -> AsyncIterator[SshServer]:
    keys = tmp_path / "ssh"
    keys.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key.write_private_key(str(keys / "client"))
    client_key.write_public_key(str(keys / "client.pub"))
    server = SshServer(0, keys / "client", keys / "known_hosts")

    async def run_locally(process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command or ""
        server.commands.append(command)
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        process.stdout.write(out.decode(errors="replace"))
        process.stderr.write(err.decode(errors="replace"))
        process.exit(proc.returncode or 0)

    acceptor = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=str(keys / "client.pub"),
        sftp_factory=True,
        process_factory=run_locally,
        allow_scp=False,
    )
    server.port = acceptor.get_port()
    public = host_key.export_public_key().decode().strip()
    server.known_hosts.write_text(f"[127.0.0.1]:{server.port} {public}\n")
    try:
        yield server
    finally:
        acceptor.close()
        await acceptor.wait_closed()


@dataclass
class Site:
    """A local config directory and the "host" directory it deploys to."""

    local: Path
    host: Path
    ports: dict[str, int]
    data: dict[str, Any]

    @property
    def config(self) -> Path:
        return self.local / "mox.toml"

    def write(self) -> None:
        self.config.write_text(tomlkit.dumps(self.data))


def dead_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_site(tmp_path: Path) -> Site:
    local, host = tmp_path / "local", tmp_path / "host"
    local.mkdir()
    host.mkdir()
    ports = {"submission": free_port(), "imap": free_port()}
    data = minimal_config()
    data["listeners"] = {
        "internal": {
            "ips": ["127.0.0.1"],
            "submission": {
                "enabled": True,
                "port": ports["submission"],
                "require_starttls": False,
            },
            "imap": {"enabled": True, "port": ports["imap"], "require_starttls": False},
        }
    }
    # DNS only on loopback, where nothing answers (tests never ask the machine's resolver).
    data["dns"] = {"nameservers": [f"127.0.0.1:{dead_udp_port()}"], "timeout": 0.5}
    data["accounts"]["alice"]["password_file"] = "secrets/alice.password"
    (local / "secrets").mkdir()
    (local / "secrets" / "alice.password").write_text(derive_credentials(PASSWORD).to_text())
    site = Site(local, host, ports, data)
    site.write()
    return site


def options(server: SshServer, site: Site, **kw: Any) -> DeployOptions:
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "root",
        "client_keys": [server.client_key],
        "known_hosts": server.known_hosts,
        "remote_dir": PurePosixPath(str(site.host)),
        "remote_mox": PY,
        "reload_command": f"sh {site.host.parent / 'restart.sh'}",
        "timeout": 60.0,
    }
    defaults.update(kw)
    return DeployOptions(**defaults)


RESTART = """#!/bin/sh
# The test's "systemctl restart mox": stop the mox serve started before, start a new one.
set -e
pidfile={host}/../serve.pid
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  i=0
  while [ -d /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null \\
      && [ $i -lt 200 ]; do
    sleep 0.1; i=$((i + 1))
  done
fi
cd {host}
nohup {py} serve --config {host}/mox.toml >> {host}/../serve.log 2>&1 < /dev/null &
echo $! > "$pidfile"
"""


def write_restart(site: Site) -> None:
    script = site.host.parent / "restart.sh"
    script.write_text(RESTART.format(host=site.host, py=PY))


def stop_served(site: Site) -> None:
    pidfile = site.host.parent / "serve.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass


async def wait_port(port: int, site: Site) -> None:
    log = site.host.parent / "serve.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    pytest.fail(f"port {port} not listening after 60 s:\n{log.read_text() if log.exists() else ''}")


def send_and_read(site: Site, rcpt: str, subject: str) -> bytes:
    """Submit a message to `rcpt` as alice, read it back as alice over IMAP."""
    msg = (
        f"From: alice@example.test\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
        f"Message-Id: <{subject.replace(' ', '-')}@example.test>\r\n\r\nbody of {subject}\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", site.ports["submission"], timeout=30) as smtp:
        smtp.login("alice@example.test", PASSWORD)
        assert smtp.sendmail("alice@example.test", [rcpt], msg) == {}
    with imaplib.IMAP4("127.0.0.1", site.ports["imap"], timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        imap.select("Inbox")
        typ, found = imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK"
        assert found[0], f"no message {subject!r} in alice's Inbox"
        typ, fetched = imap.fetch(found[0].split()[0], "(BODY.PEEK[TEXT])")
        body = fetched[0]
        assert isinstance(body, tuple)
        return body[1]


@pytest.mark.integration
@pytest.mark.timeout(180)
async def test_deploy_swaps_config_and_server_picks_it_up(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    site = make_site(tmp_path)
    write_restart(site)
    lines: list[str] = []
    try:
        report = await deploy(site.config, options(ssh_server, site), lines.append)
        assert report.swapped
        assert report.reloaded
        assert [c.kind for c in report.changes] == ["new", "new"]
        assert (site.host / "mox.toml").read_bytes() == site.config.read_bytes()
        secret = site.host / "secrets" / "alice.password"
        assert secret.read_bytes() == (site.local / "secrets" / "alice.password").read_bytes()
        assert stat.S_IMODE(secret.stat().st_mode) == 0o640
        assert "secrets/alice.password: new (secret, contents not shown)" in "\n".join(lines)
        assert "mox-cred1" not in "\n".join(lines)  # secrets never printed
        # Checked on the host (in the staging directory) before the swap; staging removed.
        assert any(" config check " in c and "/.deploy-" in c for c in ssh_server.commands)
        assert not list(site.host.glob(".deploy-*"))
        await wait_port(site.ports["submission"], site)
        await wait_port(site.ports["imap"], site)
        body = await asyncio.to_thread(send_and_read, site, "alice@example.test", "first deploy")
        assert body == b"body of first deploy\r\n"

        # v2: a new address for alice. The dry run shows the diff and changes nothing.
        site.data["accounts"]["alice"]["destinations"]["info@example.test"] = {}
        site.write()
        before = (site.host / "mox.toml").read_bytes()
        pid_before = (tmp_path / "serve.pid").read_text()
        ran = len(ssh_server.commands)
        lines.clear()
        dry = await deploy(site.config, options(ssh_server, site, dry_run=True), lines.append)
        shown = "\n".join(lines)
        assert not dry.swapped
        assert not dry.reloaded
        assert '+[accounts.alice.destinations."info@example.test"]' in shown
        assert "--- a/mox.toml\n+++ b/mox.toml" in shown
        assert "dry run, nothing changed" in shown
        assert (site.host / "mox.toml").read_bytes() == before
        assert len(ssh_server.commands) == ran  # not even a check ran on the host
        assert (tmp_path / "serve.pid").read_text() == pid_before

        report = await deploy(site.config, options(ssh_server, site), lines.append)
        assert [c.kind for c in report.changes] == ["same", "changed"]
        assert report.swapped
        assert report.reloaded
        assert (site.host / "mox.toml").read_bytes() == site.config.read_bytes()
        assert (tmp_path / "serve.pid").read_text() != pid_before  # restarted
        await wait_port(site.ports["submission"], site)
        await wait_port(site.ports["imap"], site)
        body = await asyncio.to_thread(send_and_read, site, "info@example.test", "second deploy")
        assert body == b"body of second deploy\r\n"

        # Nothing changed: no upload, no reload.
        ran = len(ssh_server.commands)
        lines.clear()
        again = await deploy(site.config, options(ssh_server, site), lines.append)
        assert not again.changed
        assert not again.swapped
        assert not again.reloaded
        assert len(ssh_server.commands) == ran
        assert "are up to date" in "\n".join(lines)
    finally:
        stop_served(site)


async def test_invalid_config_is_refused_locally(tmp_path: Path, ssh_server: SshServer) -> None:
    site = make_site(tmp_path)
    site.data["listeners"]["internal"]["submission"]["port"] = "abc"
    site.write()
    with pytest.raises(ConfigError) as exc:
        await deploy(site.config, options(ssh_server, site), lambda _: None)
    assert any("listeners.internal.submission.port" in p for p in exc.value.problems)
    assert ssh_server.commands == []
    assert list(site.host.iterdir()) == []


async def test_host_side_check_failure_changes_nothing(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    site = make_site(tmp_path)
    (site.host / "mox.toml").write_text("# the running config\n")
    # A host whose mox refuses the config (say, an older version that lacks a key).
    wrapper = tmp_path / "old-mox"
    wrapper.write_text('#!/bin/sh\necho "$3: listeners.internal.smtp: unknown key" >&2\nexit 1\n')
    wrapper.chmod(0o755)
    opts = options(ssh_server, site, remote_mox=str(wrapper))
    with pytest.raises(DeployError) as exc:
        await deploy(site.config, opts, lambda _: None)
    text = str(exc.value)
    assert "does not pass `mox config check` on the host; nothing was changed" in text
    assert f"{site.host}/mox.toml: listeners.internal.smtp: unknown key" in text
    assert (site.host / "mox.toml").read_text() == "# the running config\n"
    assert not (site.host / "secrets").exists()
    assert not list(site.host.glob(".deploy-*"))
    assert not any(DEFAULT_RELOAD in c or "restart.sh" in c for c in ssh_server.commands)


async def test_reload_failure_is_reported(tmp_path: Path, ssh_server: SshServer) -> None:
    site = make_site(tmp_path)
    opts = options(ssh_server, site, reload_command="echo unit not found >&2; exit 5")
    with pytest.raises(DeployError) as exc:
        await deploy(site.config, opts, lambda _: None)
    assert "config swapped, but the reload command failed (exit 5)" in str(exc.value)
    assert "unit not found" in str(exc.value)
    assert (site.host / "mox.toml").read_bytes() == site.config.read_bytes()


@pytest.mark.slow
async def test_dnscheck_result_is_reported(tmp_path: Path, ssh_server: SshServer) -> None:
    site = make_site(tmp_path)
    # A resolver port where nothing answers: dnscheck runs on the host and says it could not
    # check (exit 2); deploy reports that and still succeeds.
    dead = dead_udp_port()
    lines: list[str] = []
    opts = options(ssh_server, site, reload_command="true", resolver=f"127.0.0.1:{dead}")
    report = await deploy(site.config, opts, lines.append)
    assert report.swapped
    assert report.reloaded
    assert report.dnscheck_status is not None
    dns_cmd = [c for c in ssh_server.commands if " dnscheck " in c]
    assert dns_cmd
    assert f"--resolver 127.0.0.1:{dead}" in dns_cmd[0]
    assert f"--config {site.host}/mox.toml" in dns_cmd[0]
    verdict = {0: "no errors", 1: "errors found", 2: "could not check"}[report.dnscheck_status]
    assert f"127.0.0.1: mox dnscheck: {verdict}" in lines


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_cli_dry_run(tmp_path: Path, ssh_server: SshServer) -> None:
    site = make_site(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *MOX,
        "deploy",
        "root@127.0.0.1",
        "--config",
        str(site.config),
        "--port",
        str(ssh_server.port),
        "-i",
        str(ssh_server.client_key),
        "--known-hosts",
        str(ssh_server.known_hosts),
        "--remote-dir",
        str(site.host),
        "--dry-run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert f"{site.config}: ok (checked locally)" in text
    assert "+++ b/mox.toml" in text
    assert "+postmaster = " in text
    assert "dry run, nothing changed" in text
    assert list(site.host.iterdir()) == []


async def test_cli_wrong_host_key_is_refused(tmp_path: Path, ssh_server: SshServer) -> None:
    site = make_site(tmp_path)
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    ssh_server.known_hosts.write_text(f"[127.0.0.1]:{ssh_server.port} {other}\n")
    with pytest.raises(DeployError, match=r"cannot connect to 127\.0\.0\.1"):
        await deploy(site.config, options(ssh_server, site), lambda _: None)
    assert list(site.host.iterdir()) == []


def test_files_to_push(tmp_path: Path) -> None:
    data = minimal_config()
    data["accounts"]["alice"]["password_file"] = "secrets/alice.password"
    data["domains"]["example.test"]["dkim"] = {
        "sign": ["2026a"],
        "selectors": {
            "2026a": {"private_key_file": "dkim/2026a.pem"},
            "2026b": {"private_key_file": "/var/lib/mox/dkim/2026b.pem"},
        },
    }
    data["listeners"]["internal"]["tls"] = {"cert_file": "tls/c.pem", "key_file": "tls/k.pem"}
    loaded = parse_config(data, tmp_path / "mox.toml", check_files=False)
    pushes = files_to_push(loaded)
    assert [(str(p.remote), p.secret) for p in pushes] == [
        ("dkim/2026a.pem", True),
        ("secrets/alice.password", True),
        ("tls/c.pem", False),
        ("tls/k.pem", True),
        ("mox.toml", False),  # the config last, absolute paths are the host's own
    ]
    assert pushes[0].local == tmp_path / "dkim" / "2026a.pem"

    data["accounts"]["alice"]["password_file"] = "../outside"
    loaded = parse_config(data, tmp_path / "mox.toml", check_files=False)
    with pytest.raises(DeployError, match="leaves the config directory"):
        files_to_push(loaded)


def test_cli_default_reload_matches() -> None:
    from mox.cli import deploy as deploy_cli

    assert deploy_cli.DEFAULT_RELOAD == DEFAULT_RELOAD
    assert deploy_cli.split_host("root@[::1]") == ("root", "::1")
    assert deploy_cli.split_host("mail.example.com") == (None, "mail.example.com")
