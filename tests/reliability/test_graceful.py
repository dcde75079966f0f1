"""SIGTERM finishes an SMTP transaction that is in DATA, refuses new ones, then exits cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import tomlkit

from tests.conftest import MOX, free_port, minimal_config
from tests.dnsstub import DnsStub
from tests.reliability.clients import stored_messages

pytestmark = pytest.mark.integration


def reply(sock: socket.socket) -> str:
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, "connection closed"
        data += chunk
        lines = data.split(b"\r\n")
        if data.endswith(b"\r\n") and lines[-2][3:4] != b"-":
            return data.decode()


def connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)


def test_sigterm_drains_in_flight_data(tmp_path: Path, mox_env: dict[str, str]) -> None:
    port = free_port()
    data = minimal_config()
    data["listeners"]["internal"]["smtp"] = {"enabled": True, "port": port}
    stub = DnsStub({("example.org", "A"): ["192.0.2.10"]})
    data["dns"] = {"nameservers": [stub.address]}  # never the machine's resolver
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(data))
    proc = subprocess.Popen(
        [*MOX, "serve", "--config", str(config)],
        env=mox_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with connect(port) as sock, connect(port) as other:
            assert reply(sock).startswith("220")
            assert reply(other).startswith("220")
            for cmd, code in (
                (b"EHLO example.org", "250"),
                (b"MAIL FROM:<a@example.org>", "250"),
                (b"RCPT TO:<alice@example.test>", "250"),
                (b"DATA", "354"),
            ):
                sock.sendall(cmd + b"\r\n")
                assert reply(sock).startswith(code), cmd
            sock.sendall(b"Subject: in flight\r\n\r\nfirst half\r\n")
            other.sendall(b"EHLO example.org\r\n")
            assert reply(other).startswith("250")
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            other.sendall(b"MAIL FROM:<b@example.org>\r\n")
            assert reply(other).startswith("421 4.3.2")  # no new transactions
            sock.sendall(b"second half\r\n.\r\n")
            assert reply(sock).startswith("250 2.0.0")  # the one in DATA is delivered
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stub.close()

    (msg,) = stored_messages(tmp_path / "data")
    assert msg.endswith(b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n")
