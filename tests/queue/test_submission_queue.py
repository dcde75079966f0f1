"""Submission to other domains goes through the queue: DKIM-signed, held with FUTURERELEASE,
visible in `mox queue list`, delivered to the remote MTA (aiosmtpd) on loopback."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
import trustme

from mox.dkim.keys import generate_key, public_record, write_key
from mox.dns.resolver import MockResolver
from tests.conftest import MOX
from tests.queue.remote import Remote
from tests.serverthread import PASSWORD, ServerThread, mock_world, start_server
from tests.smtpserver.raw import stored

MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: Bob <bob@remote.test>\r\n"
    b"Subject: to the world\r\nMessage-Id: <w1@example.test>\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nhello world\r\n"
)
Server = tuple[ServerThread, dict[str, int], Remote, str]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Server]:
    key = generate_key("rsa2048")
    write_key(tmp_path / "dkim.pem", key)
    record = public_record(key).to_text()
    remote = Remote()

    def tweak(data: dict[str, Any]) -> None:
        data["domains"]["example.test"]["dkim"] = {
            "selectors": {"sel1": {"private_key_file": str(tmp_path / "dkim.pem")}},
            "sign": ["sel1"],
        }
        data["queue"] = {"direct_port": remote.port, "first_retry_seconds": 0.2}

    world = mock_world()
    resolver = MockResolver(
        {
            **dict(world.records.items()),
            ("remote.test", "MX"): ["10 mx.remote.test."],
            ("mx.remote.test", "A"): ["127.0.0.1"],
        }
    )
    srv, ports = start_server(tmp_path, trustme.CA(), tweak, resolver=resolver)
    yield srv, ports, remote, record
    srv.stop()
    remote.stop()


def submit(port: int) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c.starttls(context=ctx)
    c.login("alice@example.test", PASSWORD)
    return c


def test_remote_recipient_delivered_signed(setup: Server) -> None:
    srv, ports, remote, record = setup
    with submit(ports["submission"]) as c:
        refused = c.sendmail(
            "alice@example.test", ["bob@remote.test", "alice@example.test"], MESSAGE
        )
        assert refused == {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not remote.handler.received:
        time.sleep(0.05)
    (got,) = remote.handler.received
    assert got.rcpts == ["bob@remote.test"]
    assert got.mail_from == "alice@example.test"
    assert got.data.startswith(b"Authentication-Results: mail.example.test; auth=pass")
    assert got.data.endswith(b"\r\n\r\nhello world\r\n")
    # An independent verifier (dkimpy) checks our signature against the published key.
    txt = record.encode()
    assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: txt)
    (local,) = stored(srv, "alice", "Inbox")  # the local recipient got it at once
    assert local.endswith(b"hello world\r\n")


def test_futurerelease_holds_in_queue(setup: Server, tmp_path: Path) -> None:
    srv, ports, remote, _ = setup
    with submit(ports["submission"]) as c:
        _code, ehlo = c.ehlo("laptop")
        assert b"FUTURERELEASE 5184000 " in ehlo
        assert c.mail("alice@example.test", ["HOLDFOR=3600"])[0] == 250
        assert c.rcpt("bob@remote.test")[0] == 250
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.data(MESSAGE)[0] == 250
        assert c.mail("alice@example.test", ["HOLDFOR=99999999"])[0] == 501  # over 60 days
    time.sleep(0.5)
    assert remote.handler.received == []  # held
    assert stored(srv, "alice", "Inbox") == []  # local recipients are held too
    assert srv.running is not None
    res = subprocess.run(
        [*MOX, "queue", "list", "--config", str(tmp_path / "mox.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all("queued" in line and "attempts=0/8" in line for line in lines)
    ids = [line.split("\t")[0] for line in lines]
    res = subprocess.run(
        [*MOX, "queue", "retry", *ids, "--config", str(tmp_path / "mox.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.stdout.strip() == "retry: 2 message(s)"
    deadline = time.monotonic() + 20  # the server notices the change within seconds
    while time.monotonic() < deadline and not remote.handler.received:
        time.sleep(0.1)
    assert remote.handler.received[0].rcpts == ["bob@remote.test"]
    assert len(stored(srv, "alice", "Inbox")) == 1
