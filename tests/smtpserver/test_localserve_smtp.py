"""localserve SMTP, as mox: every address accepted; magic local parts fail on purpose."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.serverthread import ServerThread, start_server
from tests.smtpserver.raw import Raw, stored

Server = tuple[ServerThread, dict[str, int]]


def with_mox_account(data: dict[str, Any]) -> None:
    data["domains"]["localhost"] = {}
    data["accounts"]["mox"] = {"domain": "localhost", "destinations": {"mox@localhost": {}}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, trustme.CA(), with_mox_account, localserve=True)
    yield srv, ports
    srv.stop()


def test_any_address_delivered_to_mox(server: Server) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        assert (
            c.sendmail("x@example.org", ["someone@anywhere.example"], b"Subject: a\r\n\r\nb\r\n")
            == {}
        )
    (msg,) = stored(srv, "mox", "Inbox")
    assert msg.endswith(b"Subject: a\r\n\r\nb\r\n")


@pytest.mark.parametrize(
    ("rcpt", "at_data"),
    [
        ("temperror@localhost", (451, b"4.0.0 temporary failure simulated by localserve")),
        ("permerror@localhost", (550, b"5.0.0 failure simulated by localserve")),
        ("user452@localhost", (452, b"4.0.0 temporary failure simulated by localserve")),
        ("user554@localhost", (554, b"5.0.0 failure simulated by localserve")),
    ],
)
def test_magic_recipients_fail_at_data(
    server: Server, rcpt: str, at_data: tuple[int, bytes]
) -> None:
    srv, ports = server
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("x")
        c.mail("x@example.org")
        assert c.rcpt(rcpt)[0] == 250
        assert c.data(b"Subject: a\r\n\r\nb\r\n") == at_data
    assert stored(srv, "mox", "Inbox") == []


def test_magic_prefixes_fail_at_their_command(server: Server) -> None:
    _, ports = server
    raw = Raw(ports["smtp"])
    try:
        raw.reply()
        raw.cmd("EHLO x")
        assert raw.cmd("RCPT TO:<x@localhost>").startswith("503")
        assert raw.cmd("MAIL FROM:<mailfrom451@localhost>").startswith("451")
        assert raw.cmd("MAIL FROM:<x@example.org>").startswith("250")
        assert raw.cmd("RCPT TO:<rcptto550@localhost>").startswith("550")
        assert raw.cmd("RCPT TO:<ok@localhost>").startswith("250")
    finally:
        raw.close()
