"""Knot (authoritative, DNSSEC signing) and Unbound (validating) on loopback, for DNS tests.

As ../shared/TESTING.md sketches: Knot serves copies of the zones from a temporary directory and
signs the forward zones; Unbound validates with the trust anchor read from Knot's DNSKEY and
stubs the test zones to Knot. Both run unprivileged on free high ports as children of the test,
wait for readiness with a bounded timeout (showing their log when it fails) and are stopped by
their process at teardown. Unbound's `outgoing-interface: 127.0.0.1` keeps it from ever reaching
beyond loopback; its cache is off so a changed zone is seen at once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import free_port

READY_TIMEOUT = 20.0


def need(binary: str) -> str:
    """The path of a Debian tool; fails the test with a clear message when it is missing."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if Path(p).exists()), None
    )
    if path is None:
        pytest.fail(
            f"{binary} is not installed: run `python3 scripts/system_deps.py --install` as root "
            "(Debian packages knot, knot-dnsutils, knot-dnssecutils, unbound)"
        )
    return path


def kdig(port: int, name: str, rtype: str, *flags: str) -> str:
    res = subprocess.run(
        [need("kdig"), "@127.0.0.1", "-p", str(port), "+time=1", "+retry=0", *flags, name, rtype],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return res.stdout


def wait_for(
    what: str, check: Callable[[], bool], log: Path, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if check():
            return
        time.sleep(0.1)
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    pytest.fail(f"{what} not ready within {READY_TIMEOUT:.0f}s (exit {proc.poll()}); log:\n{text}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Knot:
    """knotd serving `zones` (name → zone text); names in `signed` get automatic DNSSEC."""

    def __init__(self, directory: Path, zones: dict[str, str], signed: set[str]) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.zones = dict(zones)
        self.signed = signed
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "knot.log"

    def _conf(self) -> str:
        zone_lines = "\n".join(
            f'  - domain: "{name}"\n    file: "{name}.zone"\n'
            f"    template: {'signed' if name in self.signed else 'unsigned'}"
            for name in self.zones
        )
        d = self.dir
        return f"""server:
  rundir: "{d}"
  listen: 127.0.0.1@{self.port}
database:
  storage: "{d}/db"
control:
  listen: "{d}/knot.sock"
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{d}"
  - id: signed
    storage: "{d}"
    dnssec-signing: on
    zonefile-sync: -1
  - id: unsigned
    storage: "{d}"
    zonefile-sync: -1
zone:
{zone_lines}
"""

    def start(self) -> Knot:
        knotd = need("knotd")
        (self.dir / "db").mkdir(exist_ok=True)
        for name, text in self.zones.items():
            (self.dir / f"{name}.zone").write_text(text)
        conf = self.dir / "knot.conf"
        conf.write_text(self._conf())
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [knotd, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        for name in self.zones:
            flags = ("+dnssec",) if name in self.signed else ()

            def ready(name: str = name, flags: tuple[str, ...] = flags) -> bool:
                out = kdig(self.port, name, "SOA", *flags)
                return "status: NOERROR" in out and (not flags or "RRSIG" in out)

            wait_for(f"knotd (zone {name})", ready, self.log, self.proc)
        return self

    def serial(self, name: str) -> int:
        m = re.search(r"SOA\s+\S+\s+\S+\s+(\d+)", kdig(self.port, name, "SOA"))
        return int(m.group(1)) if m else -1

    def trust_anchors(self) -> list[str]:
        """The KSK (flags 257) DNSKEY of each signed zone, as Unbound trust-anchor lines."""
        out = []
        for name in sorted(self.signed):
            for line in kdig(self.port, name, "DNSKEY", "+short").splitlines():
                if line.startswith("257 "):
                    out.append(f"{name}. DNSKEY {line}")
        return out

    def set_zone(self, name: str, text: str) -> None:
        """Replace a zone's content (a higher SOA serial is set) and wait until Knot serves it."""
        before = self.serial(name)
        text = re.sub(
            r"(SOA\s+\S+\s+\S+\s+)(\d+)", lambda m: f"{m.group(1)}{before + 1}", text, count=1
        )
        (self.dir / f"{name}.zone").write_text(text)
        res = subprocess.run(
            [need("knotc"), "-s", str(self.dir / "knot.sock"), "zone-reload", name],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert self.proc is not None
        wait_for(f"knotd reload of {name}", lambda: self.serial(name) > before, self.log, self.proc)

    def stop(self) -> None:
        stop(self.proc)


class Unbound:
    """A validating Unbound that stubs `zones` to Knot, with `anchors` as its trust anchors."""

    def __init__(self, directory: Path, knot: Knot, anchors: list[str]) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.knot = knot
        self.anchors = anchors
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "unbound.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Unbound:
        unbound = need("unbound")
        d = self.dir
        lines = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  outgoing-interface: 127.0.0.1",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{d}"',
            f'  pidfile: "{d}/unbound.pid"',
            f'  logfile: "{self.log}"',
            "  use-syslog: no",
            "  verbosity: 1",
            "  val-log-level: 2",
            "  do-not-query-localhost: no",
            '  module-config: "validator iterator"',
            "  cache-max-ttl: 0",
            "  cache-max-negative-ttl: 0",
            "  key-cache-size: 0",
            "  msg-cache-size: 0",
            "  rrset-cache-size: 0",
            "  infra-host-ttl: 1",
            '  local-zone: "test." nodefault',  # RFC 6761 §6.2: else NXDOMAIN for .test
            '  local-zone: "127.in-addr.arpa." nodefault',
        ]
        lines += [f'  trust-anchor: "{a}"' for a in self.anchors]
        for name in self.knot.zones:
            lines += ["stub-zone:", f'  name: "{name}"', f"  stub-addr: 127.0.0.1@{self.knot.port}"]
        conf = d / "unbound.conf"
        conf.write_text("\n".join(lines) + "\n")
        checkconf = shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf"
        res = subprocess.run(
            [checkconf, str(conf)], capture_output=True, text=True, timeout=20, check=False
        )
        assert res.returncode == 0, f"unbound config: {res.stdout}{res.stderr}"
        with (d / "unbound.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [unbound, "-d", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
            )
        first = next(iter(self.knot.zones))
        wait_for(
            "unbound",
            lambda: "status: NOERROR" in kdig(self.port, first, "SOA"),
            self.log,
            self.proc,
        )
        return self

    def stop(self) -> None:
        stop(self.proc)
