"""Postfix (Debian) relays a message into our port-25 listener over loopback."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
import trustme

from tests.integration.postfix import Postfix
from tests.serverthread import start_server
from tests.smtpserver.raw import stored

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: via postfix\r\n"
    b"Message-Id: <pf-1@example.org>\r\n"
    b"\r\n"
    b"relayed by a real MTA\r\n"
)


def test_postfix_relays_into_our_mailbox(tmp_path: Path) -> None:
    srv, ports = start_server(tmp_path, trustme.CA())
    try:
        postfix = Postfix(ports["smtp"], ["example.test", "other.test"]).start()
        try:
            with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as c:
                assert c.sendmail("sender@example.org", ["alice@example.test"], MESSAGE) == {}
            deadline = time.monotonic() + 60
            msgs: list[bytes] = []
            while time.monotonic() < deadline and not msgs:
                msgs = stored(srv, "alice", "Inbox")
                time.sleep(0.2)
            assert msgs, f"not delivered; postfix log:\n{postfix.read_log()}"
        finally:
            postfix.stop()
        (msg,) = msgs
        lines = msg.decode().split("\r\n")
        assert lines[0] == "Return-Path: <sender@example.org>"
        assert lines[1] == "Delivered-To: alice@example.test"
        assert lines[2] == "Authentication-Results: mail.example.test;"  # RFC 8601 §5
        at = next(i for i, line in enumerate(lines) if line.startswith("Received:"))
        assert lines[at].startswith(
            "Received: from postfix.example.org (127.0.0.1) by mail.example.test (mox) with ESMTPS"
        )  # Postfix used STARTTLS (smtp_tls_security_level = may)
        assert b"by postfix.example.org (Postfix)" in msg  # its own trace header, below ours
        assert msg.endswith(b"\r\n\r\nrelayed by a real MTA\r\n")
    finally:
        srv.stop()
