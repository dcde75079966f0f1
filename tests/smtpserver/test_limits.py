"""Per-account sending limits on submission (as mox): messages per day, first-time recipients."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.serverthread import PASSWORD, ServerThread, start_server

Server = tuple[ServerThread, dict[str, int]]
MESSAGE = b"From: alice@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


def limits(data: dict[str, Any]) -> None:
    data["accounts"]["alice"]["max_outgoing_messages_per_day"] = 2
    data["accounts"]["alice"]["max_first_time_recipients_per_day"] = 2
    data["accounts"]["carol"] = {
        "domain": "example.test",
        "destinations": {"carol@example.test": {}, "dave@example.test": {}},
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, trustme.CA(), limits)
    yield srv, ports
    srv.stop()


def session(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.starttls(context=ctx)
    c.login("alice@example.test", PASSWORD)
    return c


def test_first_time_recipients_then_messages_per_day(server: Server) -> None:
    _, ports = server
    with session(ports["submission"]) as c:
        c.mail("alice@example.test")
        assert c.rcpt("bob@other.test")[0] == 250
        assert c.rcpt("carol@example.test")[0] == 250
        # A third address never written to before, on the same day: over the limit of 2.
        assert c.rcpt("dave@example.test") == (451, b"4.7.1 daily limit of new recipients reached")
        assert c.data(MESSAGE)[0] == 250
        # Known recipients do not count again.
        assert c.sendmail("alice@example.test", ["bob@other.test"], MESSAGE) == {}
        # Two messages sent today: the third is refused at MAIL, temporarily (4xx).
        assert c.mail("alice@example.test") == (
            451,
            b"4.7.1 daily limit of outgoing messages reached",
        )


def test_helo_name_must_resolve(server: Server) -> None:
    _, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        assert c.helo("nonexistent.example.org")[0] == 550  # as mox: HELO names must resolve
        assert c.helo("example.org")[0] == 250  # the test world gives it an address
        assert c.helo("[127.0.0.1]")[0] == 250  # address literals are not looked up
