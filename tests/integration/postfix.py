"""Postfix as a peer MTA on loopback: its own config directory, queue and log under a temp dir.

`Postfix(tmp, relay_port=...)` relays mail for the test domains to `[127.0.0.1]:relay_port` (our
port-25 listener) and listens itself on a free loopback port. No DNS is used
(`smtp_dns_support_level = disabled`, next hops are address literals). Postfix must be started as
root; it drops privileges to the `postfix` user itself.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {tmp}/queue
data_directory = {tmp}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.example.org
mydomain = example.org
myorigin = example.org
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domains}
transport_maps = inline:{{ {transports} }}
smtp_dns_support_level = disabled
smtp_tls_security_level = may
smtputf8_enable = yes
alias_maps =
alias_database =
maillog_file = {tmp}/postfix.log
smtpd_banner = $myhostname ESMTP
"""


def _check_root() -> None:
    if shutil.which("postfix") is None:
        pytest.fail(
            "postfix is not installed: `./run test` as root installs it (scripts/system_deps.py)"
        )
    if os.geteuid() != 0:
        pytest.fail("the Postfix peer must be started as root (CI runs as root)")


class Postfix:
    def __init__(
        self,
        relay_port: int,
        domains: list[str],
        *,
        mailboxes: list[str] = (),  # type: ignore[assignment]
        tls_pem: tuple[bytes, bytes] | None = None,
    ) -> None:
        """Relay `domains` to our port; as final destination, keep mail for `mailboxes` (full
        addresses) in Maildirs under `self.vmail`; with `tls_pem` (cert chain, key) offer
        STARTTLS."""
        _check_root()
        # Not under pytest's tmp_path: its parents are 0700, and Postfix's daemons run as the
        # `postfix` user, which must reach its queue and data directories.
        self.base = Path(tempfile.mkdtemp(prefix="mox-postfix-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.dir = self.base / "config"
        self.tmp = self.base / "state"
        self.dir.mkdir()
        self.tmp.mkdir()
        (self.tmp / "queue").mkdir()
        (self.tmp / "data").mkdir()
        shutil.chown(self.tmp / "data", "postfix")
        self.port = free_port()
        transports = ", ".join(f"{d}=smtp:[127.0.0.1]:{relay_port}" for d in domains)
        extra = ""
        self.vmail = self.tmp / "vmail"
        if mailboxes:
            self.vmail.mkdir()
            shutil.chown(self.vmail, "postfix", "postfix")
            vdomains = sorted({m.rpartition("@")[2] for m in mailboxes})
            maps = ", ".join(
                f"{m}={m.rpartition('@')[2]}/{m.partition('@')[0]}/" for m in mailboxes
            )
            pw = pwd.getpwnam("postfix")
            extra += (
                f"virtual_mailbox_domains = {' '.join(vdomains)}\n"
                f"virtual_mailbox_base = {self.vmail}\n"
                f"virtual_mailbox_maps = inline:{{ {maps} }}\n"
                f"virtual_uid_maps = static:{pw.pw_uid}\nvirtual_gid_maps = static:{pw.pw_gid}\n"
            )
        if tls_pem is not None:
            (self.dir / "tls.crt").write_bytes(tls_pem[0])
            (self.dir / "tls.key").write_bytes(tls_pem[1])
            extra += (
                f"smtpd_tls_cert_file = {self.dir / 'tls.crt'}\n"
                f"smtpd_tls_key_file = {self.dir / 'tls.key'}\n"
                "smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n"
            )
        (self.dir / "main.cf").write_text(
            MAIN_CF.format(tmp=self.tmp, domains=" ".join(domains), transports=transports) + extra
        )
        master = Path("/etc/postfix/master.cf").read_text()
        master = re.sub(
            r"(?m)^smtp\s+inet\s.*$", f"127.0.0.1:{self.port} inet n - n - - smtpd", master
        )
        (self.dir / "master.cf").write_text(master)
        self.log = self.tmp / "postfix.log"

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.dir), *args], capture_output=True, text=True, timeout=60
        )

    def start(self) -> Postfix:
        res = self.postfix("start")
        if res.returncode != 0:
            pytest.fail(f"postfix start failed: {res.stdout}{res.stderr}{self.read_log()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"postfix did not listen on {self.port}: {self.read_log()}")

    def stop(self) -> None:
        self.postfix("stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def delivered(self, address: str) -> list[bytes]:
        """Messages in a final-destination Maildir."""
        local, _, domain = address.partition("@")
        new = self.vmail / domain / local / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.exists() else []

    def read_log(self) -> str:
        try:
            return self.log.read_text()
        except OSError:
            return "(no postfix log)"
