"""SMTP delivery and submission against the real server over loopback, with smtplib and swaks."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.serverthread import PASSWORD, ServerThread, start_server

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@other.test>\r\n"
    b"Subject: hello\r\n"
    b"Message-Id: <m1@example.test>\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b".leading dot line\r\n"
    b"bye\r\n"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[tuple[ServerThread, dict[str, int]]]:
    srv, ports = start_server(tmp_path, ca)
    yield srv, ports
    srv.stop()


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def stored(srv: ServerThread, account: str, mailbox: str) -> list[bytes]:
    assert srv.running is not None
    acc = srv.running.store.account(account)

    async def read() -> list[bytes]:
        mb = acc.get_mailbox(mailbox)
        assert mb is not None, mailbox
        return [acc.read_message(m) for m in acc.list_messages(mb.id)]

    return srv.call(read())


class Raw:
    """A line-based SMTP transcript client."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline().decode()
            assert line, "connection closed"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    def cmd(self, text: str | bytes) -> str:
        self.sock.sendall(text if isinstance(text, bytes) else text.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_delivery_on_port_25_stored_durably_with_trace_header(
    server: tuple[ServerThread, dict[str, int]],
) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        code, ehlo = c.ehlo("client.example.org")
        assert code == 250
        assert b"PIPELINING" in ehlo
        assert b"STARTTLS" in ehlo
        assert b"AUTH" not in ehlo  # RFC 4954: no AUTH on the delivery port
        refused = c.sendmail("someone@example.org", ["bob@other.test"], MESSAGE)
        assert refused == {}
    msgs = stored(srv, "bob", "Lists/Bob")  # destination mailbox created on delivery
    assert len(msgs) == 1
    header, _, rest = msgs[0].partition(b"\r\n\tfor <bob@other.test>; ")
    assert header.startswith(b"Received: from client.example.org (127.0.0.1) by mail.example.test")
    assert rest.split(b"\r\n", 1)[1] == MESSAGE


def test_no_open_relay_and_unknown_user(server: tuple[ServerThread, dict[str, int]]) -> None:
    _, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        c.mail("someone@example.org")
        code, msg = c.rcpt("victim@elsewhere.example")
        assert (code, msg) == (550, b"5.7.1 not accepting email for domain")
        code, msg = c.rcpt("nobody@example.test")
        assert (code, msg) == (550, b"5.1.1 no such user")
        code, _ = c.rcpt("alice+tag@example.test")
        assert code == 250


def test_submission_requires_auth_and_matching_from(
    server: tuple[ServerThread, dict[str, int]], ca: trustme.CA
) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=10) as c:
        c.ehlo("laptop")
        assert not c.has_extn("auth")  # no AUTH offered before STARTTLS
        code, _ = c.mail("alice@example.test")
        assert code == 530  # authentication required
        c.rset()
        c.starttls(context=client_tls(ca))
        c.ehlo("laptop")
        assert "PLAIN" in c.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            c.login("alice@example.test", "wrong")
        assert info.value.smtp_code == 535
        c.login("alice@example.test", PASSWORD)
        code, msg = c.mail("bob@other.test")
        assert (code, msg) == (550, b"5.7.1 must match authenticated user")
        c.rset()
        refused = c.sendmail("alice@example.test", ["bob@other.test"], MESSAGE)
        assert refused == {}
        c.mail("alice@example.test")
        code, msg = c.rcpt("friend@gmail.example")
        assert code == 550
        assert b"not available" in msg
    assert stored(srv, "bob", "Lists/Bob")[0].endswith(MESSAGE)


def test_implicit_tls_submission_login(
    server: tuple[ServerThread, dict[str, int]], ca: trustme.CA
) -> None:
    srv, ports = server
    with smtplib.SMTP_SSL(
        "127.0.0.1", ports["submissions"], timeout=10, context=client_tls(ca)
    ) as c:
        c.login("bob@other.test", PASSWORD)
        c.sendmail("bob@other.test", ["alice@example.test"], MESSAGE)
    (msg,) = stored(srv, "alice", "Inbox")
    assert b"with ESMTPSA" in msg.split(b"\r\n", 1)[0]
    assert msg.endswith(MESSAGE)


def test_garbage_and_long_lines_keep_connection_usable(
    server: tuple[ServerThread, dict[str, int]],
) -> None:
    _, ports = server
    raw = Raw(ports["smtp"])
    try:
        assert raw.reply().startswith("220 mail.example.test ESMTP mox")
        assert raw.cmd("EHLO client.example.org").startswith("250-mail.example.test")
        assert raw.cmd("FROBNICATE now").startswith("500")
        assert raw.cmd(b"NOOP " + b"x" * 5000 + b"\r\n").startswith("500")
        assert raw.cmd("RCPT TO:<alice@example.test>").startswith("503")  # MAIL first
        assert raw.cmd("NOOP").startswith("250")
        # Pipelined transaction in one write (RFC 2920).
        raw.sock.sendall(b"MAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert raw.reply().startswith("250")
        assert raw.reply().startswith("250")
        assert raw.reply().startswith("354")
        assert raw.cmd(b"Subject: x\r\n\r\nbody\r\n.\r\n").startswith("250 2.0.0")
        assert raw.cmd("QUIT").startswith("221")
    finally:
        raw.close()


def test_message_over_size_limit_refused(server: tuple[ServerThread, dict[str, int]]) -> None:
    _, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        code, _ = c.mail("x@example.org", ["SIZE=999999999999"])
        assert code == 552  # RFC 1870 §6.1


@pytest.mark.integration
def test_swaks_starttls_auth_submission(server: tuple[ServerThread, dict[str, int]]) -> None:
    srv, ports = server
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.fail("swaks is not installed: run `./run test` as root, or apt-get install swaks")
    res = subprocess.run(
        [
            swaks,
            "--server",
            f"127.0.0.1:{ports['submission']}",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.test",
            "--auth-password",
            PASSWORD,
            "--pipeline",
            "--from",
            "alice@example.test",
            "--to",
            "bob@other.test",
            "--header",
            "Subject: via swaks",
            "--body",
            "swaks body",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "235 2.7.0" in res.stdout
    (msg,) = stored(srv, "bob", "Lists/Bob")
    assert b"Subject: via swaks" in msg
    assert b"swaks body" in msg
