"""The README's promise: `mox localserve` on its fixed ports, used with real clients.

Runs the real command as a subprocess (ports 1025/1587/1465/1143/1993 on 127.0.0.1, so this is the
one place those fixed ports are used), sends with smtplib over submission with AUTH, and reads the
exact message back with imaplib (plain and TLS) and imapclient.

As mox's localserve, mail submitted to other domains goes through the outgoing queue, which
delivers it to localserve's own SMTP port (1025) instead of an MX: no DNS is involved. Local parts
starting with `queue` are accepted at submission and fail in the queue's delivery.
"""

from __future__ import annotations

import imaplib
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
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


def fetch_each(imap: imaplib.IMAP4, item: str) -> list[bytes]:
    """`item` (e.g. "(RFC822)") of every message in the selected mailbox, in order."""
    typ, nums = imap.search(None, "ALL")
    assert typ == "OK"
    out = []
    for num in nums[0].split():
        fetch_typ, parts = imap.fetch(num, item)
        assert fetch_typ == "OK"
        first = parts[0]
        assert isinstance(first, tuple)
        out.append(first[1])
    return out


def fetch_all_rfc822(imap: imaplib.IMAP4) -> list[bytes]:
    assert imap.login(USER, PASSWORD)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    return fetch_each(imap, "(RFC822)")


def poll(what: str, probe: Callable[[], bool], timeout: float = 30) -> None:
    """Until `probe()` is true (the queue delivers in the background), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s")


def inbox(timeout: float = 10) -> list[bytes]:
    """Every message in mox's Inbox, read with BODY.PEEK (no flags change)."""
    with imaplib.IMAP4("127.0.0.1", PORTS["imap"], timeout=timeout) as imap:
        assert imap.login(USER, PASSWORD)[0] == "OK"
        assert imap.select("INBOX", readonly=True)[0] == "OK"
        return fetch_each(imap, "(BODY.PEEK[])")


def queue_cli(directory: Path, *args: str) -> str:
    """`mox queue …` against the running localserve's config, as a user would run it."""
    proc = subprocess.run(
        [*MOX, "queue", *args, "--config", str(directory / "mox.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_submit_then_read_back_byte_for_byte(localserve: tuple[Path, str]) -> None:
    directory, _ = localserve
    with smtplib.SMTP("127.0.0.1", PORTS["submission"], timeout=10) as smtp:
        smtp.login(USER, PASSWORD)
        refused = smtp.sendmail(USER, ["someone@example.org", "any-address@localhost"], MESSAGE)
        assert refused == {}

    # any-address@localhost is ours: delivered at once. someone@example.org goes through the
    # queue, which delivers it to our own port 1025, into the same account: a second copy.
    poll("queued copy delivered via port 1025", lambda: len(inbox()) == 2)
    with imaplib.IMAP4("127.0.0.1", PORTS["imap"], timeout=10) as imap:
        plain = fetch_all_rfc822(imap)
    assert len(plain) == 2
    (local,) = [m for m in plain if b"\tfor <any-address@localhost>; " in m]
    (queued,) = [m for m in plain if m is not local]
    # The local copy: our submission trace headers in front of the message exactly as sent
    # (smtplib's dot-stuffing undone).
    assert local.startswith(
        b"Authentication-Results: localhost; auth=pass smtp.mailfrom=mox@localhost\r\n"
        b"Received: from localhost by localhost (mox) with ESMTPA id "
    )
    head, sep, body = local.partition(b"\r\n\tfor <any-address@localhost>; ")
    assert sep
    assert body.split(b"\r\n", 1)[1] == MESSAGE
    ident = head.rpartition(b" id ")[2]
    # The queued copy: delivered over SMTP to port 1025 (final delivery headers, SPF checked
    # against the mocked localhost records), then the same submission's Received line (same
    # id), then the message exactly as sent.
    assert queued.startswith(
        b"Return-Path: <mox@localhost>\r\nDelivered-To: someone@example.org\r\n"
    )
    assert b"spf=pass" in queued.split(b"\r\n\r\n", 1)[0]
    # STARTTLS to port 1025, and SMTPUTF8 for the non-ASCII Subject (RFC 6531 §3.4, §3.7.3).
    assert b"from localhost (127.0.0.1) by localhost (mox) with UTF8SMTPS id " in queued
    assert b"\r\n\tfor <someone@example.org>; " in queued
    marker = b"Received: from localhost by localhost (mox) with ESMTPA id " + ident + b"; "
    _, sep, rest = queued.partition(marker)
    assert sep
    assert rest.split(b"\r\n", 1)[1] == MESSAGE
    assert queue_cli(directory, "list") == "queue is empty\n"
    assert "someone@example.org\tdelivered" in queue_cli(directory, "list", "--retired")

    with imaplib.IMAP4_SSL(
        "127.0.0.1", PORTS["imaps"], ssl_context=tls_context(directory), timeout=10
    ) as imaps:
        assert fetch_all_rfc822(imaps) == plain

    with IMAPClient(
        "127.0.0.1", port=PORTS["imaps"], ssl=True, ssl_context=tls_context(directory), timeout=10
    ) as client:
        client.login(USER, PASSWORD)
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 2
        uids = client.search(["SUBJECT", "localserve"])
        assert len(uids) == 2
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
    with smtplib.SMTP("127.0.0.1", PORTS["smtp"], timeout=10) as delivery:
        delivery.sendmail(
            "x@example.org", ["whoever@localhost"], MESSAGE.replace(b"localserve-1", b"delivery-3")
        )

    def message_ids() -> set[bytes]:
        with IMAPClient("127.0.0.1", port=PORTS["imap"], ssl=False, timeout=10) as client:
            client.login(USER, PASSWORD)
            client.select_folder("INBOX", readonly=True)
            return {
                f[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip()
                for f in client.fetch(
                    client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
                ).values()
            }

    # Port 1025 delivers at once; tls@example.org comes through the queue.
    assert b"Message-Id: <delivery-3@localhost>" in message_ids()
    poll("queued copy", lambda: b"Message-Id: <tls-2@localhost>" in message_ids())


def test_queue_permerror_gives_dsn(localserve: tuple[Path, str]) -> None:
    """As mox: a `queue…` local part is accepted at submission; the queue's delivery to port
    1025 gets the simulated 550, and the failure DSN lands in the sender's Inbox."""
    directory, _ = localserve
    msg = MESSAGE.replace(b"localserve-1", b"permerror-4")
    with smtplib.SMTP("127.0.0.1", PORTS["submission"], timeout=10) as smtp:
        smtp.login(USER, PASSWORD)
        assert smtp.sendmail(USER, ["queuepermerror@example.org"], msg) == {}

    def dsns() -> list[bytes]:
        return [m for m in inbox() if b"queuepermerror@example.org" in m and b"report" in m]

    poll("failure DSN in mox's Inbox", lambda: len(dsns()) == 1)
    (dsn,) = dsns()
    assert b"Content-Type: multipart/report; report-type=delivery-status;" in dsn  # RFC 6522
    assert b"Final-Recipient: rfc822; queuepermerror@example.org\r\n" in dsn  # RFC 3464
    assert b"Action: failed\r\n" in dsn
    assert b"Diagnostic-Code: smtp; 550 5.0.0 failure simulated by localserve" in dsn
    assert b"Message-Id: <permerror-4@localhost>" in dsn  # the original's header is returned
    # Only the DSN: the message itself was never delivered.
    assert [m for m in inbox() if b"<permerror-4@localhost>" in m] == [dsn]
    assert "queuepermerror@example.org\tfailed\t" in queue_cli(directory, "list", "--retired")


def test_queue_temperror_is_retried(localserve: tuple[Path, str]) -> None:
    """A `queue…temperror` address: the first attempt gets 451 from port 1025 and the message
    stays queued for a retry, which `mox queue list` shows."""
    directory, _ = localserve
    msg = MESSAGE.replace(b"localserve-1", b"temperror-5")
    with smtplib.SMTP_SSL(
        "127.0.0.1", PORTS["submissions"], context=tls_context(directory), timeout=10
    ) as smtp:
        smtp.login(USER, PASSWORD)
        assert smtp.sendmail(USER, ["queuetemperror@example.org"], msg) == {}

    def line() -> str:
        found = [x for x in queue_cli(directory, "list").splitlines() if "queuetemperror@" in x]
        return found[0] if found else ""

    poll("first attempt made", lambda: "attempts=1/" in line())
    fields = line().split("\t")
    assert fields[1:4] == ["queuetemperror@example.org", "queued", "attempts=1/8"]
    assert fields[4].startswith("next=")
    assert fields[-1] == "451 4.0.0 temporary failure simulated by localserve"
    assert not [m for m in inbox() if b"Message-Id: <temperror-5@localhost>" in m]


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


def test_webapi_send_goes_through_queue(localserve: tuple[Path, str]) -> None:
    """The web API's Send shares the submission path: another domain's address gets a queue
    id, and the queue delivers the message to port 1025, into mox's Inbox."""
    directory, _ = localserve
    request = {
        "Message": {
            "From": {"Name": "mox", "Address": USER},
            "To": [{"Name": "Api", "Address": "api@example.org"}],
            "Subject": "localserve via webapi",
            "Text": "sent with the web API\n",
        }
    }
    with httpx.Client(
        base_url=f"https://localhost:{PORTS['https']}/webapi/v0/",
        verify=tls_context(directory),
        auth=(USER, PASSWORD),
        timeout=30,
    ) as web:
        r = web.post("Send", json=request)
    assert r.status_code == 200, r.text
    (sub,) = r.json()["Submissions"]
    assert sub["Address"] == "api@example.org"
    assert isinstance(sub["QueueMsgID"], int)
    assert sub["QueueMsgID"] > 0

    def arrived() -> list[bytes]:
        return [m for m in inbox() if b"Subject: localserve via webapi" in m]

    poll("web API message delivered via the queue", lambda: len(arrived()) == 1)
    (got,) = arrived()
    assert got.startswith(b"Return-Path: <mox@localhost>\r\nDelivered-To: api@example.org\r\n")
    assert b"sent with the web API" in got
    retired = queue_cli(directory, "list", "--retired")
    assert f"{sub['QueueMsgID']}\tapi@example.org\tdelivered\t" in retired
