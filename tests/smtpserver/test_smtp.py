"""SMTP delivery and submission against the real server over loopback, with smtplib and swaks."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.serverthread import PASSWORD, ServerThread, start_server
from tests.smtpserver.raw import Raw, stored, stored_meta

MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@other.test>\r\n"
    b"Subject: hello\r\n"
    b"Message-Id: <m1@example.test>\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b".leading dot line\r\n"
    b"bye\r\n"
)

Server = tuple[ServerThread, dict[str, int]]


def tweak(data: dict[str, Any]) -> None:
    data["domains"]["example.test"]["aliases"] = {
        "team": {"addresses": ["alice@example.test", "bob@other.test"], "post_public": True},
        "board": {"addresses": ["bob@other.test"], "allow_msg_from": True},
    }
    data["limits"] = {"auth_failures_per_minute": 4}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, ca, tweak)
    yield srv, ports
    srv.stop()


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_ehlo_extensions_as_mox(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    raw = Raw(ports["smtp"])
    try:
        assert raw.reply() == "220 mail.example.test ESMTP mox"
        assert raw.cmd("EHLO client.example.org").splitlines() == [
            "250-mail.example.test",
            "250-PIPELINING",
            "250-SIZE 104857600",
            "250-STARTTLS",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            "250-CHUNKING",
            "250-DSN",
            "250-LIMITS RCPTMAX=1000",
            "250 SMTPUTF8",
        ]
    finally:
        raw.close()
    with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=10) as c:
        c.starttls(context=client_tls(ca))
        code, text = c.ehlo("laptop")
        assert code == 250
        lines = text.decode().splitlines()
        assert lines[3] == "REQUIRETLS"
        assert "STARTTLS" not in lines
        assert lines[4] == (
            "AUTH SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 "
            "CRAM-MD5 PLAIN LOGIN"
        )


def test_delivery_on_port_25_with_trace_headers(server: Server, ca: trustme.CA) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        c.starttls(context=client_tls(ca))
        c.ehlo("client.example.org")
        assert c.sendmail("someone@example.org", ["bob@other.test"], MESSAGE) == {}
    (msg,) = stored(srv, "bob", "Lists/Bob")  # destination mailbox created on delivery
    head, sep, body = msg.partition(b"\r\nFrom: Alice")
    assert sep
    assert b"From: Alice" + body == MESSAGE
    lines = head.decode().split("\r\n")
    assert lines[0] == "Return-Path: <someone@example.org>"  # RFC 5321 §4.4
    assert lines[1] == "Delivered-To: bob@other.test"
    # RFC 8601 §5 and RFC 7208 §9.1: the verdict goes above our Received field.
    assert lines[2] == "Authentication-Results: mail.example.test;"
    assert lines[3] == "\tiprev=pass (without dnssec) policy.iprev=127.0.0.1 (mail.example.test);"
    assert "\tspf=none (without dnssec) smtp.mailfrom=example.org;" in lines
    at = next(i for i, line in enumerate(lines) if line.startswith("Received:"))
    spf_at = next(i for i, line in enumerate(lines) if line.startswith("Received-SPF: none "))
    assert 3 < spf_at < at
    assert lines[at].startswith(
        "Received: from client.example.org (127.0.0.1) by mail.example.test (mox) with ESMTPS id "
    )
    assert lines[at + 1].startswith("\t(using TLSv1.3 with cipher TLS_")
    assert lines[at + 2].startswith("\tfor <bob@other.test>; ")


def test_no_open_relay(server: Server) -> None:
    _, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        c.mail("someone@example.org")
        assert c.rcpt("victim@elsewhere.example") == (550, b"5.7.1 not accepting email for domain")
        assert c.rcpt("<victim@[192.0.2.1]>")[0] == 550
        assert c.rcpt("alice+tag@example.test")[0] == 250
        assert c.rcpt("Team@example.test")[0] == 250  # alias, any case


def test_unknown_recipient_refused_after_data_without_leaking(server: Server) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        c.mail("someone@example.org")
        assert c.rcpt("nobody@example.test")[0] == 250  # same answer as for a real user
        code, msg = c.data(MESSAGE)
        assert (code, msg) == (550, b"5.1.1 no such user")
        assert c.noop()[0] == 250  # the connection stays usable
        c.mail("someone@example.org")
        c.rcpt("alice@example.test")
        c.rcpt("nobody@example.test")
        assert c.data(MESSAGE)[0] == 550  # nothing is delivered half
    assert stored(srv, "alice", "Inbox") == []


def test_alias_delivers_to_members(server: Server) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.sendmail("x@example.org", ["team@example.test"], MESSAGE)
    assert len(stored(srv, "alice", "Inbox")) == 1
    assert len(stored(srv, "bob", "Lists/Bob")) == 1


def test_loop_detected(server: Server) -> None:
    _, ports = server
    looped = b"Received: from a by b; Wed, 25 Nov 2026 08:00:00 +0000\r\n" * 101 + MESSAGE
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        c.mail("x@example.org")
        c.rcpt("alice@example.test")
        assert c.data(looped) == (550, b"5.4.6 too many Received headers, mail loop?")


def test_dsn_parameters_stored_with_message(server: Server) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("client.example.org")
        assert c.mail("x@example.org", ["RET=HDRS", "ENVID=QQ+2Bid"])[0] == 250
        code, _ = c.rcpt("alice@example.test", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;A+40b.c"])
        assert code == 250
        assert c.data(MESSAGE)[0] == 250
        c.mail("x@example.org")
        assert c.rcpt("alice@example.test", ["NOTIFY=NEVER,SUCCESS"])[0] == 501
        assert c.rcpt("alice@example.test", ["FROB=1"])[0] == 555
    (meta,) = stored_meta(srv, "alice", "Inbox")
    assert meta["dsn"] == {
        "ret": "HDRS",
        "envid": "QQ+id",
        "notify": ["SUCCESS", "FAILURE"],
        "orcpt": "rfc822;A@b.c",
    }
    assert meta["mail_from"] == "x@example.org"
    assert meta["remote_ip"] == "127.0.0.1"


def test_submission_rules(server: Server, ca: trustme.CA) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=10) as c:
        c.ehlo("laptop")
        assert not c.has_extn("auth")  # no AUTH offered before STARTTLS
        assert c.docmd("AUTH PLAIN")[0] == 538  # RFC 4954 §6
        assert c.mail("alice@example.test")[0] == 530
        c.starttls(context=client_tls(ca))
        c.ehlo("laptop")
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            c.login("alice@example.test", "wrong")
        assert info.value.smtp_code == 535
        c.login("alice@example.test", PASSWORD)
        assert c.mail("bob@other.test") == (550, b"5.7.1 must match authenticated user")
        c.rset()
        c.mail("alice@example.test")
        code, _ = c.rcpt("friend@elsewhere.example")
        assert code == 250  # other domains go to the outgoing queue (tests/queue)
        c.rset()
        forged = MESSAGE.replace(b"From: Alice <alice@example.test>", b"From: <bob@other.test>")
        with pytest.raises(smtplib.SMTPDataError) as data_err:
            c.sendmail("alice@example.test", ["bob@other.test"], forged)
        assert data_err.value.smtp_code == 550
        bare = b"From: alice@example.test\r\nSubject: no id\r\n\r\nbody\r\n"
        assert c.sendmail("alice@example.test", ["bob@other.test"], bare) == {}
        # An alias with allow_msg_from may be used by its members as sender.
        assert c.mail("board@example.test")[0] == 550  # alice is not a member
    (msg,) = stored(srv, "bob", "Lists/Bob")
    assert msg.startswith(
        b"Authentication-Results: mail.example.test; auth=pass "
        b"smtp.mailfrom=alice@example.test\r\nReceived: from mail.example.test "
    )
    assert b"\r\nMessage-Id: <" in msg
    assert b"@mail.example.test>\r\nDate: " in msg
    assert msg.endswith(b"\r\n\r\nbody\r\n")


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_password_mechanisms_on_465(server: Server, ca: trustme.CA, mech: str) -> None:
    srv, ports = server
    with smtplib.SMTP_SSL(
        "127.0.0.1", ports["submissions"], timeout=10, context=client_tls(ca)
    ) as c:
        c.ehlo("laptop")
        c.user, c.password = "bob@other.test", PASSWORD
        if mech == "PLAIN":
            code, _ = c.auth(mech, c.auth_plain)
        elif mech == "LOGIN":
            code, _ = c.auth(mech, c.auth_login)
        else:
            code, _ = c.auth(mech, c.auth_cram_md5)
        assert code == 235
        from_bob = MESSAGE.replace(b"From: Alice <alice@example.test>", b"From: <bob@other.test>")
        c.sendmail("bob@other.test", ["alice@example.test"], from_bob)
    (msg,) = stored(srv, "alice", "Inbox")
    assert b"with ESMTPSA" in msg


def test_failed_logins_are_throttled_per_ip(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    with smtplib.SMTP_SSL(
        "127.0.0.1", ports["submissions"], timeout=30, context=client_tls(ca)
    ) as c:
        c.ehlo("laptop")
        c.user, c.password = "alice@example.test", "wrong"
        for _ in range(4):  # the test config allows 4 failures a minute
            with pytest.raises(smtplib.SMTPAuthenticationError):
                c.auth("PLAIN", c.auth_plain)
    with pytest.raises(smtplib.SMTPConnectError) as info:
        smtplib.SMTP_SSL("127.0.0.1", ports["submissions"], timeout=10, context=client_tls(ca))
    assert info.value.smtp_code == 421  # refused at connect, even before a password


def test_garbage_and_limits_keep_connection_usable(server: Server) -> None:
    _, ports = server
    raw = Raw(ports["smtp"])
    try:
        raw.reply()
        raw.cmd("EHLO client.example.org")
        assert raw.cmd("FROBNICATE now").startswith("500 5.5.2")
        assert raw.cmd(b"NOOP " + b"x" * 5000 + b"\r\n").startswith("500 5.5.2")
        assert raw.cmd("RCPT TO:<alice@example.test>").startswith("503 5.5.1")
        assert raw.cmd("MAIL FROM:<x@example.org> SIZE=999999999999") == (
            "552 5.3.4 message too large"
        )
        assert raw.cmd("MAIL FROM:<x@example.org> BODY=BINARYMIME").startswith("555 5.5.4")
        assert raw.cmd("MAIL FROM:<x@example.org> SIZE=1 SIZE=2").startswith("501 5.5.4")
        assert raw.cmd("MAIL FROM:<not an address>").startswith("501 5.1.7")
        assert raw.cmd("MAIL FROM:<>").startswith("250 2.1.0")  # null reverse-path
        assert raw.cmd("RCPT TO:<alice@example.test>").startswith("250")
        assert raw.cmd("RCPT TO:<bob@other.test>").startswith("452 4.5.3")  # one for <>
        assert raw.cmd("RSET").startswith("250 2.0.0")
        # A pipelined transaction in one write (RFC 2920).
        raw.sock.sendall(b"MAIL FROM:<x@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert raw.reply().startswith("250 2.1.0")
        assert raw.reply().startswith("250 2.1.5")
        assert raw.reply().startswith("354")
        assert raw.cmd(b"Subject: x\r\n\r\nbody\r\n.\r\n").startswith("250 2.0.0")
        assert raw.cmd("VRFY alice").startswith("252 2.5.0")
        assert raw.cmd("QUIT").startswith("221 2.0.0")
    finally:
        raw.close()


def test_starttls_command_injection_discarded(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    raw = Raw(ports["smtp"])
    try:
        raw.reply()
        raw.cmd("EHLO client.example.org")
        # The plaintext after STARTTLS must not be executed inside the TLS session (RFC 3207 §4.2).
        raw.sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        assert raw.reply().startswith("220")
        raw.start_tls(client_tls(ca), "localhost")
        assert raw.cmd("EHLO client.example.org").startswith("250-mail.example.test")
        assert raw.cmd("RCPT TO:<alice@example.test>").startswith("503 5.5.1")  # no MAIL
    finally:
        raw.close()


def test_concurrent_connection_limit(server: Server) -> None:
    _, ports = server
    conns = [Raw(ports["smtp"]) for _ in range(30)]
    try:
        for c in conns:
            assert c.reply().startswith("220")
        extra = Raw(ports["smtp"])
        assert extra.reply().startswith("421 4.7.0")
        extra.close()
    finally:
        for c in conns:
            c.close()


@pytest.mark.integration
def test_swaks_starttls_auth_pipelining(server: Server) -> None:
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
    res = subprocess.run(
        [swaks, "--server", f"127.0.0.1:{ports['smtp']}", "--ehlo", "test", "--quit-after", "EHLO"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for ext in (
        "PIPELINING",
        "SIZE",
        "STARTTLS",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "CHUNKING",
        "DSN",
        "LIMITS RCPTMAX=1000",
        "SMTPUTF8",
    ):
        assert f"250-{ext}" in res.stdout or f"250 {ext}" in res.stdout, ext
