"""SIGTERM while an IMAP APPEND literal is arriving: the APPEND is finished and acknowledged, the
server then exits cleanly, and the message is in the store after the restart."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import tomlkit

from mox.auth.password import derive_credentials
from tests.conftest import MOX, free_port, minimal_config
from tests.dnsstub import DnsStub
from tests.reliability.clients import stored_messages

pytestmark = pytest.mark.integration

PASSWORD = "graceful-imap-1"
BODY = b"Subject: appended during shutdown\r\n\r\n" + b"0123456789abcdef" * 200_000 + b"\r\n"


def connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {marker!r}: {data!r}"
        data += chunk
    return data


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_sigterm_finishes_append_in_progress(tmp_path: Path, mox_env: dict[str, str]) -> None:
    port = free_port()
    data = minimal_config()
    data["listeners"]["internal"]["imap"] = {
        "enabled": True,
        "port": port,
        "require_starttls": False,
    }
    pwfile = tmp_path / "alice.pw"
    pwfile.write_text(derive_credentials(PASSWORD).to_text() + "\n")
    pwfile.chmod(0o600)
    data["accounts"]["alice"]["password_file"] = str(pwfile)
    stub = DnsStub({})
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
            for s in (sock, other):
                read_until(s, b"* OK")
                s.sendall(f"l1 LOGIN alice@example.test {PASSWORD}\r\n".encode())
                assert b"l1 OK" in read_until(s, b"l1 ")
            sock.sendall(b"a1 APPEND INBOX {%d}\r\n" % len(BODY))
            read_until(sock, b"+ ")
            half = len(BODY) // 2
            sock.sendall(BODY[:half])
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            # A session waiting for its next command is told at once (RFC 9051 §7.1.5).
            assert b"* BYE" in read_all(other)
            time.sleep(0.3)
            assert proc.poll() is None, "the server must wait for the APPEND"
            sock.sendall(BODY[half:] + b"\r\n")
            out = read_until(sock, b"a1 ")
            out += read_all(sock)
            assert b"a1 OK [APPENDUID" in out, out
            assert b"* BYE" in out
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stub.close()

    assert stored_messages(tmp_path / "data") == [BODY]
