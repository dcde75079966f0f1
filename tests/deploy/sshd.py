"""Debian's OpenSSH server as a throwaway target: loopback, a free port, its own host key and one
authorized key, all in a temporary directory; started as root (`sshd -D -e`), stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@dataclass
class Sshd:
    port: int
    client_key: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def need_parts() -> None:
    """Fail (never skip) with the fix when a part of the target is missing."""
    missing = [p for p in (SSHD, SFTP_SERVER) if not Path(p).exists()]
    missing += [t for t in ("ssh", "ssh-keygen") if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: install Debian's openssh-server "
            "(scripts/system_deps.py --install)"
        )
    if os.geteuid() != 0:
        pytest.fail("the sshd target must be started as root (CI runs as root)")


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mox-test", "-f", str(path)],
        check=True,
        timeout=30,
    )


def start_sshd(directory: Path) -> Sshd:
    need_parts()
    directory.mkdir(parents=True, exist_ok=True)
    host_key, client_key = directory / "host_ed25519", directory / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (directory / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    host_pub = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                f"Subsystem sftp {SFTP_SERVER}",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    log = directory / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    sshd = Sshd(port, client_key, known_hosts, proc, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return sshd
        except OSError:
            time.sleep(0.1)
    sshd.stop()
    pytest.fail(f"sshd not answering on port {port} after 20 s:\n{log.read_text()}")
