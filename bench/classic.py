"""The classic stack under test: Postfix (Debian) delivering over LMTP into Dovecot (Debian
dovecot-imapd, dovecot-lmtpd), both configured here from private directories under /var/tmp,
listening on loopback high ports, run as root (they drop privileges themselves).

Choices, printed with the results:
- Dovecot `mail_fsync = always`: our server fsyncs the message file, its directory and the index
  before it acknowledges; Dovecot's default `optimized` skips some of those fsyncs (e.g. index
  and directory updates), so `always` is the like-for-like setting. Postfix fsyncs its queue file
  before its 250 as it always does.
- Mail in Maildir (Dovecot's classic format, one file per message as ours).
- Passwords: Dovecot ARGON2ID (Dovecot's strongest scheme, comparable in cost to our scrypt
  N=2^14, r=8), no auth cache (Dovecot's default), so both stacks pay a memory-hard hash per login.
- Full-text search: by default none, as Debian's Dovecot comes (SEARCH BODY reads the message
  files); with `fts=True` the fts-xapian plugin (Debian dovecot-fts-xapian), indexing on
  delivery, so both stacks answer BODY searches from an index (its indexing of a 100,000-message
  mailbox took longer than 12 minutes here, so it is not the default).
- Postfix: Debian's master.cf with our smtpd port, no DNS (peer name lookups off, next hop an
  address), relay to `lmtp:inet:127.0.0.1:<dovecot lmtp port>` for the benchmark's domain.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.mail import RARE_EVERY, make_message
from bench.ours import DOMAIN, free_port
from bench.procstat import wait_port

__all__ = ["Classic", "classic_missing", "fts_xapian_available"]

MAIL_UID = 65534  # nobody/nogroup own the mail; Dovecot refuses root for mail access
XAPIAN_PLUGIN = Path("/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {state}/queue
data_directory = {state}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domain}
transport_maps = inline:{{ {domain}=lmtp:inet:127.0.0.1:{lmtp} }}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
local_recipient_maps =
alias_maps =
alias_database =
biff = no
maillog_file = {state}/postfix.log
smtpd_banner = $myhostname ESMTP
"""

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = mox-bench-{port}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u/Maildir
mail_fsync = {fsync}
first_valid_uid = 1
first_valid_gid = 1
default_process_limit = 2000
default_client_limit = 20000
default_vsz_limit = 1G
mail_max_userip_connections = 100000
mail_plugins = $mail_plugins {plugins}
passdb {{
  driver = passwd-file
  args = scheme=ARGON2ID {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/mail/%u allow_all_users=yes
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100000
}}
plugin {{
{plugin_settings}
}}
"""

XAPIAN_SETTINGS = """\
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = yes
  fts_enforced = yes"""


def fts_xapian_available() -> bool:
    return XAPIAN_PLUGIN.exists()


def classic_missing() -> list[str]:
    """What keeps the classic stack from running here (empty when it can)."""
    tools = ("postfix", "dovecot", "doveadm")
    problems = [f"{tool} not installed" for tool in tools if not shutil.which(tool)]
    if os.geteuid() != 0:
        problems.append("Postfix and Dovecot must be started as root")
    return problems


def _run(args: list[str], timeout: float = 120) -> str:
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stdout}{res.stderr}")
    return res.stdout


class Classic:
    """Postfix + Dovecot; same interface as bench.ours.Ours."""

    name = "theirs"
    acks_are_durable = False  # Postfix's 250 means queued: count in Dovecot's mailbox instead

    def __init__(
        self,
        base: Path,
        accounts: list[str],
        password: str,
        *,
        fsync: str = "always",
        fts: bool = False,
    ) -> None:
        # Not under a 0700 temp dir: Postfix's and Dovecot's unprivileged processes must reach it.
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        self.fsync = fsync
        self.xapian = fts and fts_xapian_available()
        self.fts = "xapian" if self.xapian else "none (SEARCH BODY reads the message files)"
        self.smtp_port = free_port()
        self.imap_port = free_port()
        self.lmtp_port = free_port()
        self.dovecot_proc: subprocess.Popen[bytes] | None = None
        self._write_dovecot(accounts, password)
        self._write_postfix()

    # configuration

    def _write_dovecot(self, accounts: list[str], password: str) -> None:
        d = self.base / "dovecot"
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        os.chown(d / "mail", MAIL_UID, MAIL_UID)
        self.dovecot_dir = d
        hashed = _run(["doveadm", "pw", "-s", "ARGON2ID", "-p", password]).strip()
        (d / "passwd").write_text("".join(f"{name}@{DOMAIN}:{hashed}::::::\n" for name in accounts))
        xapian = self.xapian
        self.dovecot_conf = d / "dovecot.conf"
        self.dovecot_conf.write_text(
            DOVECOT_CONF.format(
                d=d,
                port=self.imap_port,
                lmtp=self.lmtp_port,
                fsync=self.fsync,
                uid=MAIL_UID,
                plugins="fts fts_xapian" if xapian else "",
                plugin_settings=XAPIAN_SETTINGS if xapian else "",
            )
        )

    def _write_postfix(self) -> None:
        self.postfix_dir = self.base / "postfix"
        state = self.base / "postfix-state"
        for p in (self.postfix_dir, state, state / "queue", state / "data"):
            p.mkdir(parents=True, exist_ok=True)
        shutil.chown(state / "data", "postfix")
        self.postfix_state = state
        (self.postfix_dir / "main.cf").write_text(
            MAIN_CF.format(state=state, domain=DOMAIN, lmtp=self.lmtp_port)
        )
        master = Path("/etc/postfix/master.cf").read_text()
        master = re.sub(
            r"(?m)^smtp\s+inet\s.*$", f"127.0.0.1:{self.smtp_port} inet n - n - - smtpd", master
        )
        (self.postfix_dir / "master.cf").write_text(master)

    # lifecycle

    def start(self, timeout: float = 60) -> float:
        """Start Dovecot and Postfix together; seconds until both IMAP and SMTP accept."""
        t0 = time.monotonic()
        self.dovecot_proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.dovecot_conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pf = subprocess.Popen(
            ["postfix", "-c", str(self.postfix_dir), "start"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            t1 = wait_port(self.imap_port, timeout)
            t2 = wait_port(self.smtp_port, timeout)
            wait_port(self.lmtp_port, timeout)
        except TimeoutError:
            out = pf.communicate(timeout=30)[0]
            self.stop()
            msg = f"Postfix/Dovecot did not start: {out!r} {self.log_tail()}"
            raise RuntimeError(msg) from None
        pf.wait(30)
        return max(t1, t2) - t0

    def postfix_pid(self) -> int | None:
        try:
            return int((self.postfix_state / "queue" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.postfix_pid()
        subprocess.run(
            ["postfix", "-c", str(self.postfix_dir), "stop"], capture_output=True, timeout=60
        )
        if self.dovecot_proc is not None and self.dovecot_proc.poll() is None:
            self.dovecot_proc.send_signal(signal.SIGTERM)
            try:
                self.dovecot_proc.wait(30)
            except subprocess.TimeoutExpired:
                self.dovecot_proc.kill()
                self.dovecot_proc.wait(10)
        self.dovecot_proc = None
        deadline = time.monotonic() + 30
        while pid is not None and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        # the ports must be free before the next start
        for port in (self.smtp_port, self.imap_port, self.lmtp_port):
            _wait_closed(port, 10)

    def close(self) -> None:
        self.stop()

    def pids(self) -> list[int]:
        out = [] if self.dovecot_proc is None else [self.dovecot_proc.pid]
        pid = self.postfix_pid()
        if pid is not None:
            out.append(pid)
        return out

    def dovecot_pids(self) -> list[int]:
        return [] if self.dovecot_proc is None else [self.dovecot_proc.pid]

    # mail

    def maildir(self, user: str) -> Path:
        return self.dovecot_dir / "mail" / f"{user}" / "Maildir"

    def delivered(self, user: str) -> int:
        """Messages Dovecot has stored for user (files in the Maildir's new/ and cur/)."""
        n = 0
        for sub in ("new", "cur"):
            try:
                with os.scandir(self.maildir(user) / sub) as it:
                    n += sum(1 for _ in it)
            except FileNotFoundError:
                pass
        return n

    def populate(self, user: str, count: int, size: int) -> None:
        """Write Maildir files directly (no fsync: set-up only), then let Dovecot build its index
        (`doveadm force-resync`) and its full-text index (`doveadm index`), as a server that has
        been running would have them. Dovecot must be running (doveadm asks its auth service)."""
        md = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            (md / sub).mkdir(parents=True, exist_ok=True)
        for p in (md.parent, md, md / "cur", md / "new", md / "tmp"):
            os.chown(p, MAIL_UID, MAIL_UID)
        now = int(time.time())
        for i in range(1, count + 1):
            data = make_message(i, size, user, rare=i % RARE_EVERY == 1)
            lf = data.replace(b"\r\n", b"\n")  # Maildir files have LF line endings
            name = f"{now - count + i}.M{i}P1.bench,S={len(lf)},W={len(data)}:2,"
            (md / "cur" / name).write_bytes(lf)
            os.chown(md / "cur" / name, MAIL_UID, MAIL_UID)
        conf = ["-c", str(self.dovecot_conf)]
        _run(["doveadm", *conf, "force-resync", "-u", user, "INBOX"], timeout=1800)
        if self.xapian:
            _run(["doveadm", *conf, "index", "-u", user, "INBOX"], timeout=3600)

    def log_tail(self, n: int = 3000) -> str:
        parts = []
        for path in (self.dovecot_dir / "dovecot.log", self.postfix_state / "postfix.log"):
            try:
                parts.append(path.read_text(errors="replace")[-n:])
            except OSError:
                pass
        return "\n".join(parts) or "(no log)"


def _wait_closed(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.05)
