"""The README's promise: `mox localserve` on its fixed ports, used with real clients.

Runs the real command as a subprocess (ports 1025/1587/1465/1143/1993 on 127.0.0.1, so this is the
one place those fixed ports are used), sends with smtplib over submission with AUTH, and reads the
exact message back with imaplib (plain and TLS) and imapclient.
"""

from __future__ import annotations

import imaplib
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from imapclient import IMAPClient

from tests.conftest import MOX

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER, PASSWORD = "mox@localhost", "moxmoxmox"
PORTS = {
    "smtp": 1025,
    "submission": 1587,
    "submissions": 1465,
    "imap": 1143,
    "imaps": 1993,
    "http": 1080,
    "https": 1443,
}

MESSAGE = (
    b"From: mox <mox@localhost>\r\n"
    b"To: Someone <someone@example.org>\r\n"
    b"Subject: localserve test \xc3\xa9\r\n"
    b"Message-Id: <localserve-1@localhost>\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"caf\xc3\xa9\r\n"
    b".line starting with a dot\r\n"
    b"last line\r\n"
)


def wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"localserve exited with {proc.returncode}:\n{out}\n{err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"port {port} not listening after {timeout} s")


@pytest.fixture(scope="module")
def localserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("localserve")
    for port in PORTS.values():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port} is already in use; localserve needs it")
    proc = subprocess.Popen(
        [*MOX, "localserve", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for port in PORTS.values():
            wait_port(port, proc)
        yield directory, "started"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"localserve did not stop on SIGTERM:\n{err}")
    assert proc.returncode == 0, err
    assert "moxmoxmox" in out
    assert "imaps://mox%40localhost:moxmoxmox@127.0.0.1:1993" in out
    assert "shutting down" in err


def tls_context(directory: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(directory / "localhost.crt"))


def fetch_all_rfc822(imap: imaplib.IMAP4) -> list[bytes]:
    assert imap.login(USER, PASSWORD)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    typ, nums = imap.search(None, "ALL")
    assert typ == "OK"
    out = []
    for num in nums[0].split():
        fetch_typ, parts = imap.fetch(num, "(RFC822)")
        assert fetch_typ == "OK"
        first = parts[0]
        assert isinstance(first, tuple)
        out.append(first[1])
    return out


def test_submit_then_read_back_byte_for_byte(localserve: tuple[Path, str]) -> None:
    directory, _ = localserve
    with smtplib.SMTP("127.0.0.1", PORTS["submission"], timeout=10) as smtp:
        smtp.login(USER, PASSWORD)
        refused = smtp.sendmail(USER, ["someone@example.org", "any-address@localhost"], MESSAGE)
        assert refused == {}

    with imaplib.IMAP4("127.0.0.1", PORTS["imap"], timeout=10) as imap:
        plain = fetch_all_rfc822(imap)
    # Both recipients land in the one account: one copy, our trace headers in front of the
    # message exactly as sent (smtplib's dot-stuffing undone).
    assert len(plain) == 1
    got = plain[0]
    assert got.startswith(
        b"Authentication-Results: localhost; auth=pass smtp.mailfrom=mox@localhost\r\n"
        b"Received: from localhost by localhost (mox) with ESMTPA id "
    )
    _, sep, body = got.partition(b"\r\n\tfor <someone@example.org>; ")
    assert sep
    assert body.split(b"\r\n", 1)[1] == MESSAGE

    with imaplib.IMAP4_SSL(
        "127.0.0.1", PORTS["imaps"], ssl_context=tls_context(directory), timeout=10
    ) as imaps:
        assert fetch_all_rfc822(imaps) == plain

    with IMAPClient(
        "127.0.0.1", port=PORTS["imaps"], ssl=True, ssl_context=tls_context(directory), timeout=10
    ) as client:
        client.login(USER, PASSWORD)
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        uids = client.search(["SUBJECT", "localserve"])
        assert len(uids) == 1
        fetched = client.fetch(uids, ["RFC822", "FLAGS", "RFC822.SIZE"])
        assert sorted(f[b"RFC822"] for f in fetched.values()) == sorted(plain)
        assert all(f[b"RFC822.SIZE"] == len(f[b"RFC822"]) for f in fetched.values())
        assert all(b"\\Seen" in f[b"FLAGS"] for f in fetched.values())  # non-PEEK fetch sets it


def test_smtps_and_port_1025_delivery(localserve: tuple[Path, str]) -> None:
    directory, _ = localserve
    with smtplib.SMTP_SSL(
        "127.0.0.1", PORTS["submissions"], context=tls_context(directory), timeout=10
    ) as smtp:
        smtp.login(USER, PASSWORD)
        smtp.sendmail(USER, ["tls@example.org"], MESSAGE.replace(b"localserve-1", b"tls-2"))
    with smtplib.SMTP("127.0.0.1", PORTS["smtp"], timeout=10) as smtp:
        smtp.sendmail(
            "x@example.org", ["whoever@localhost"], MESSAGE.replace(b"localserve-1", b"delivery-3")
        )
    with IMAPClient("127.0.0.1", port=PORTS["imap"], ssl=False, timeout=10) as client:
        client.login(USER, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        ids = {
            f[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip()
            for f in client.fetch(
                client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
            ).values()
        }
        assert b"Message-Id: <tls-2@localhost>" in ids
        assert b"Message-Id: <delivery-3@localhost>" in ids


def test_wrong_password_refused(localserve: tuple[Path, str]) -> None:
    with (
        smtplib.SMTP("127.0.0.1", PORTS["submission"], timeout=10) as smtp,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        smtp.login(USER, "not-the-password")
    with (
        imaplib.IMAP4("127.0.0.1", PORTS["imap"], timeout=10) as imap,
        pytest.raises(imaplib.IMAP4.error),
    ):
        imap.login(USER, "not-the-password")


def test_autoconfig_over_https_and_http_redirect(localserve: tuple[Path, str]) -> None:
    directory, _ = localserve
    with httpx.Client(verify=tls_context(directory), timeout=10) as web:
        r = web.get(
            f"https://localhost:{PORTS['https']}/mail/config-v1.1.xml",
            params={"emailaddress": "mox@localhost"},
        )
        assert r.status_code == 200
        assert b"<port>1993</port>" in r.content
        assert b"<port>1465</port>" in r.content
        r = web.get(f"http://127.0.0.1:{PORTS['http']}/mail/config-v1.1.xml")
        assert r.status_code == 308
        assert r.headers["location"].startswith(f"https://127.0.0.1:{PORTS['https']}/")


def test_webmail_and_admin_logins(localserve: tuple[Path, str]) -> None:
    """As mox's localserve: the webmail takes mox@localhost/moxmoxmox and the admin pages take
    `moxadmin`; a wrong admin password is refused."""
    directory, _ = localserve
    base = f"https://localhost:{PORTS['https']}"
    with httpx.Client(base_url=base, verify=tls_context(directory), timeout=30) as web:
        r = web.post("/webmail/login", data={"username": USER, "password": PASSWORD})
        assert r.status_code == 303, r.text
        page = web.get("/webmail/")
        assert page.status_code == 200
        assert 'name="csrf"' in page.text
        boxes = web.get("/webmail/api/mailboxes")
        assert boxes.status_code == 200
        assert "Inbox" in boxes.text
    with httpx.Client(base_url=base, verify=tls_context(directory), timeout=30) as web:
        assert web.post("/admin/login", data={"password": "wrong"}).status_code == 401
        r = web.post("/admin/login", data={"password": "moxadmin"})
        assert r.status_code == 303, r.text
        overview = web.get("/admin/")
        assert overview.status_code == 200
        assert "localhost" in overview.text
