"""Real IMAP clients from Debian against the server: mbsync (isync) syncing both ways, fetchmail
reading messages, and mutt reading a message over COMPRESS=DEFLATE (RFC 4978).

Each client runs as a child process on 127.0.0.1 with its state in tmp_path, over implicit TLS
with a trustme CA; every run is bounded by a timeout. A missing client fails with the package to
install (scripts/system_deps.py installs them for `./run test`).
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme

from .conftest import PASSWORD, USER, ImapServer, StartServer

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 60.0


def need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"{binary} not found: install the Debian package {package!r} (as root: "
            f"python3 scripts/system_deps.py --install)"
        )
    return path


async def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def message(n: int) -> bytes:
    return (
        f"From: Sender <sender{n}@example.org>\r\n"
        f"To: mjl@mox.example\r\n"
        f"Subject: message {n}\r\n"
        f"Message-ID: <sync-{n}@example.org>\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        f"\r\n"
        f"This is message number {n}.\r\n"
    ).encode()


@pytest.fixture
async def tls_imap(start_server: StartServer, tls_ca: trustme.CA) -> ImapServer:
    # mbsync 1.4 matches the host name against the certificate's common name.
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost", common_name="127.0.0.1").configure_cert(ctx)
    return await start_server(tls="implicit", ssl_context=ctx)


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


async def test_mbsync_pulls_100_and_pushes_flag(
    tls_imap: ImapServer, ca_file: Path, tmp_path: Path
) -> None:
    mbsync = need("mbsync", "isync")
    for n in range(100):
        await tls_imap.account.deliver("Inbox", message(n))
    maildir = tmp_path / "mail"
    maildir.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(
        f"IMAPAccount mox\n"
        f"Host 127.0.0.1\nPort {tls_imap.port}\nUser {USER}\nPass {PASSWORD}\n"
        f"SSLType IMAPS\nCertificateFile {ca_file}\nAuthMechs LOGIN\n\n"
        f"IMAPStore remote\nAccount mox\n\n"
        f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n"
        f"Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\n"
        f"SyncState *\nSync All\n"
    )
    code, out = await run(mbsync, "-c", str(config), "-a", cwd=tmp_path)
    assert code == 0, out
    files = sorted((maildir / "INBOX" / "new").iterdir()) + sorted(
        (maildir / "INBOX" / "cur").iterdir()
    )
    assert len(files) == 100
    bodies = {f.read_bytes() for f in files}
    assert message(42) in bodies or any(b"message number 42." in b for b in bodies)

    # Flag one message locally (maildir info ":2,F"), sync again: the server gets \Flagged.
    target = next(f for f in files if b"message number 7." in f.read_bytes())
    base = target.name.split(":2,")[0]
    target.rename(maildir / "INBOX" / "cur" / f"{base}:2,F")
    code, out = await run(mbsync, "-c", str(config), "-a", cwd=tmp_path)
    assert code == 0, out
    flagged = [m for m in tls_imap.account.list_messages(1) if "\\Flagged" in m.flags]
    assert len(flagged) == 1
    assert b"message number 7." in tls_imap.account.read_message(flagged[0])


async def test_fetchmail_reads_messages(
    tls_imap: ImapServer, ca_file: Path, tmp_path: Path
) -> None:
    fetchmail = need("fetchmail", "fetchmail")
    await tls_imap.account.deliver("Inbox", message(1))
    await tls_imap.account.deliver("Inbox", message(2))
    out_file = tmp_path / "delivered.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"poll 127.0.0.1 protocol IMAP port {tls_imap.port} auth password\n"
        f'  user "{USER}" password "{PASSWORD}" is "{os.environ.get("USER", "root")}" here\n'
        f"  ssl sslcertfile {ca_file} sslcertck sslcommonname localhost keep fetchall\n"
        f"  mda \"/bin/sh -c 'cat >> {out_file}'\"\n"
    )
    rc.chmod(0o600)
    code, out = await run(
        fetchmail,
        "-f",
        str(rc),
        "--nosyslog",
        "--nodetach",
        "-v",
        cwd=tmp_path,
        env={"FETCHMAILHOME": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert code == 0, out
    data = out_file.read_bytes()
    assert data.count(b"Subject: message ") == 2
    assert b"This is message number 1." in data
    assert b"This is message number 2." in data
    # fetchmail fetched with BODY.PEEK and "keep": the messages stay, and it marks them seen.
    assert len(tls_imap.account.list_messages(1)) == 2


def _mutt_in_pty(argv: list[str], env: dict[str, str], timeout: float) -> bytes:
    """Run mutt on a pseudo-terminal (it needs one) and return what it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvpe(argv[0], argv, env)  # noqa: S606 (a fixed argv, no shell)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, 9)
    finally:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
    return out


async def test_mutt_reads_message_over_compress(
    tls_imap: ImapServer, ca_file: Path, tmp_path: Path
) -> None:
    mutt = need("mutt", "mutt")
    await tls_imap.account.deliver("Inbox", message(5))
    saved = tmp_path / "saved.mbox"
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f'set folder="imaps://{USER.replace("@", "%40")}@127.0.0.1:{tls_imap.port}/"\n'
        f'set spoolfile="+INBOX"\nset imap_pass="{PASSWORD}"\n'
        f'set certificate_file="{tmp_path}/certs"\nset ssl_ca_certificates_file="{ca_file}"\n'
        f"set imap_deflate=yes\nset confirmcreate=no\nset confirmappend=no\n"
        f"set quit=yes\nset delete=no\nset move=no\nset wait_key=no\nset mark_old=no\n"
        f'set header_cache=""\nset message_cachedir=""\nset mbox_type=mbox\n'
        f'push "<save-message>{saved}<enter><quit>"\n'
    )
    env = {"HOME": str(tmp_path), "TERM": "xterm", "PATH": os.environ.get("PATH", "")}
    argv = [mutt, "-n", "-F", str(muttrc), "-d", "2"]
    output = await asyncio.to_thread(_mutt_in_pty, argv, env, RUN_TIMEOUT)
    assert saved.exists(), output[-2000:]
    assert b"This is message number 5." in saved.read_bytes()
    debug = b"".join(p.read_bytes() for p in tmp_path.glob(".muttdebug*"))  # from -d 2
    assert b"COMPRESS DEFLATE" in debug, debug[-3000:]
