"""Our server under test: `mox serve` as a subprocess from a generated config on free ports.

The config has one listener on 127.0.0.1 with SMTP (port-25 service, full inbound checks: SPF,
DKIM, DMARC, iprev against a loopback DNS stub) and plain IMAP (no TLS on either side, so both
stacks are measured without TLS), one domain `bench.test`, and the benchmark's accounts with
their password secrets in files (one scrypt hash shared by all: the same password).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.procstat import wait_port
from mox.auth.password import derive_credentials

__all__ = ["DOMAIN", "Ours", "free_port"]

DOMAIN = "bench.test"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOX")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


class Ours:
    """`Ours(base, accounts, password)`, `.start()` / `.stop()`; `.pids()` for CPU and memory."""

    name = "ours"
    acks_are_durable = True  # 250 after DATA only once the message is fsynced (SPEC §5)

    def __init__(self, base: Path, accounts: list[str], password: str) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir = base / "data"
        self.smtp_port = free_port()
        self.imap_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "mox.log"
        self._dns: subprocess.Popen[bytes] | None = None
        self.dns_port = self._start_dns()
        creds = derive_credentials(password).to_text() + "\n"
        (base / "pw").mkdir(exist_ok=True)
        for name in accounts:
            path = base / "pw" / name
            path.write_text(creds)
            path.chmod(0o600)
        config = {
            "hostname": f"mail.{DOMAIN}",
            "data_dir": str(self.data_dir),
            "postmaster": accounts[0],
            "dns": {"nameservers": [f"127.0.0.1:{self.dns_port}"], "timeout": 2.0},
            "listeners": {
                "bench": {
                    "ips": ["127.0.0.1"],
                    "smtp": {"enabled": True, "port": self.smtp_port},
                    "imap": {"enabled": True, "port": self.imap_port, "require_starttls": False},
                }
            },
            "domains": {DOMAIN: {}},
            "accounts": {
                name: {
                    "domain": DOMAIN,
                    "destinations": {f"{name}@{DOMAIN}": {}},
                    "password_file": str(base / "pw" / name),
                }
                for name in accounts
            },
        }
        self.config_path = base / "mox.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        # Bytecode for the tree, as an installation has it (pip and Nix compile at install time):
        # with PYTHONDONTWRITEBYTECODE set, as on the benchmark machine, every start compiled
        # ~170 modules from source, a quarter of the start-up time (bench/PROFILE.md).
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(REPO / "mox")], check=True, env=_env()
        )

    def _start_dns(self) -> int:
        portfile = self.base / "dns.port"
        portfile.unlink(missing_ok=True)
        self._dns = subprocess.Popen(
            [sys.executable, "-m", "bench.dnsstub", str(portfile)], env=_env(), cwd=REPO
        )
        deadline = time.monotonic() + 20
        while not portfile.exists() or not portfile.read_text():
            if time.monotonic() > deadline or self._dns.poll() is not None:
                raise RuntimeError("the DNS stub did not start")
            time.sleep(0.02)
        return int(portfile.read_text())

    def populate(self, size: int, counts: dict[str, int]) -> subprocess.Popen[bytes]:
        """Start filling mailboxes through the store API (before the server runs)."""
        specs = [f"{name}:{n}" for name, n in counts.items()]
        return subprocess.Popen(
            [sys.executable, "-m", "bench.populate", str(self.data_dir), str(size), *specs],
            env=_env(),
            cwd=REPO,
        )

    def start(self, timeout: float = 60) -> float:
        """Start `mox serve`; seconds until both SMTP and IMAP accept connections."""
        log = self.log_path.open("ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mox", "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=self.base,
        )
        log.close()
        try:
            t1 = wait_port(self.smtp_port, timeout)
            t2 = wait_port(self.imap_port, max(1.0, timeout - (t1 - t0)))
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mox serve did not start: {self.log_tail()}") from None
        return max(t1, t2) - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._dns is not None:
            self._dns.terminate()
            self._dns.wait(10)
            self._dns = None

    def pids(self) -> list[int]:
        return [] if self.proc is None else [self.proc.pid]

    def delivered(self, user: str) -> int | None:
        """None: an acknowledgement already means delivered and durable."""
        return None

    def event_loop(self) -> str:
        """The event loop `mox serve` logged at its last start (uvloop where installed)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if 'event="event loop"' in line:
                return line.rpartition("loop=")[2]
        return ""

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"
