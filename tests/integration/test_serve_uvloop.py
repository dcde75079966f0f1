"""`mox serve` runs on uvloop, and TLS with SCRAM-SHA-256-PLUS (tls-exporter) works on it.

The TLS paths depend on the event loop: SMTP STARTTLS is aiosmtpd's asyncio.sslproto layered on
the loop's transport, IMAP STARTTLS is loop.start_tls, implicit TLS is the loop's own TLS
(uvloop has its own implementation), and the tls-exporter binding (RFC 9266) reads the SSL* of
the connection's ssl.SSLObject through ctypes (mox/tls/channelbinding.py). The in-process server
tests run on the default loop; these run the real command as a subprocess, once on uvloop and
once with MOX_NO_UVLOOP=1. The client side of SCRAM is RFC 5802 §3 written out, since scramp has
no tls-exporter binding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tomlkit
import trustme

from mox.auth.password import derive_credentials
from mox.tls.channelbinding import tls_exporter
from tests.conftest import MOX, free_port, minimal_config
from tests.serverthread import tls_files

pytestmark = [pytest.mark.integration]

PASSWORD = "uvloop-test-password"
USER = "alice@example.test"


class Serve:
    def __init__(self, directory: Path, ca: trustme.CA, env: dict[str, str]) -> None:
        cert_file, key_file = tls_files(directory, ca)
        self.ports = {k: free_port() for k in ("submission", "submissions", "imap", "imaps")}
        pw = directory / "alice.pw"
        pw.write_text(derive_credentials(PASSWORD).to_text() + "\n")
        pw.chmod(0o600)
        data = minimal_config()
        data["data_dir"] = str(directory / "data")
        data["accounts"]["alice"]["password_file"] = str(pw)
        data["listeners"] = {
            "test": {
                "ips": ["127.0.0.1"],
                "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
                **{k: {"enabled": True, "port": p} for k, p in self.ports.items()},
            }
        }
        config = directory / "mox.toml"
        config.write_text(tomlkit.dumps(data))
        self.log = directory / "serve.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*MOX, "serve", "--config", str(config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for port in self.ports.values():
            self._wait(port)

    def _wait(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"mox serve did not listen on {port}: {self.log.read_text()[-2000:]}")

    def loop_line(self) -> str:
        lines = [ln for ln in self.log.read_text().splitlines() if "event loop" in ln]
        assert len(lines) == 1, self.log.read_text()[-2000:]
        return lines[0]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def start(
    tmp_path: Path, ca: trustme.CA, mox_env: dict[str, str]
) -> Iterator[Callable[[dict[str, str]], Serve]]:
    started: list[Serve] = []

    def start(extra_env: dict[str, str]) -> Serve:
        s = Serve(tmp_path, ca, {**mox_env, **extra_env})
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


class Lines:
    """A line client on a socket that can switch to TLS."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def line(self) -> str:
        data = self.file.readline()
        assert data, "connection closed"
        return data.decode().rstrip("\r\n")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def start_tls(self, ctx: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def exporter(self) -> bytes:
        assert isinstance(self.sock, ssl.SSLSocket)
        assert self.sock.version() == "TLSv1.3"
        value = tls_exporter(self.sock)
        assert value is not None
        return value

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def scram_plus(
    first: Callable[[str], str], step: Callable[[str], str], cb_data: bytes
) -> tuple[str, str]:
    """RFC 5802 §3 client of SCRAM-SHA-256-PLUS with tls-exporter (RFC 9266): `first` sends the
    client-first message (base64) and returns the server's (base64), `step` the same for the
    client-final message. Returns the server-final message (decoded) and what it should be."""
    gs2 = "p=tls-exporter,,"
    nonce = secrets.token_urlsafe(18)
    first_bare = f"n={USER},r={nonce}"
    server_first = base64.b64decode(first(b64(gs2 + first_bare))).decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac(
        "sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    final_wo_proof = f"c={b64(gs2.encode() + cb_data)},r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{final_wo_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_final = base64.b64decode(step(b64(f"{final_wo_proof},p={b64(proof)}"))).decode()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return server_final, "v=" + b64(hmac.digest(server_key, auth_message, "sha256"))


def smtp_reply(c: Lines) -> str:
    lines = [c.line()]
    while lines[-1][3:4] == "-":
        lines.append(c.line())
    return "\n".join(lines)


def smtp_cmd(c: Lines, text: str) -> str:
    c.send(text)
    return smtp_reply(c)


def smtp_session(port: int, ctx: ssl.SSLContext, *, starttls: bool) -> None:
    """SCRAM-SHA-256-PLUS login and one message delivered, 250 only once durable."""
    c = Lines(port)
    try:
        if not starttls:
            c.start_tls(ctx)
        assert smtp_reply(c).startswith("220 ")
        if starttls:
            assert "250-STARTTLS" in smtp_cmd(c, "EHLO client.example")
            assert smtp_cmd(c, "STARTTLS").startswith("220 ")
            c.start_tls(ctx)
        assert "SCRAM-SHA-256-PLUS" in smtp_cmd(c, "EHLO client.example")

        def challenge(reply: str) -> str:
            assert reply.startswith("334 "), reply
            return reply[4:]

        def first(data: str) -> str:
            return challenge(smtp_cmd(c, f"AUTH SCRAM-SHA-256-PLUS {data}"))

        def step(data: str) -> str:
            return challenge(smtp_cmd(c, data))

        final, expected = scram_plus(first, step, c.exporter())
        assert final == expected  # the server holds the password's keys
        assert smtp_cmd(c, "").startswith("235 ")
        assert smtp_cmd(c, f"MAIL FROM:<{USER}>").startswith("250 ")
        assert smtp_cmd(c, f"RCPT TO:<{USER}>").startswith("250 ")
        assert smtp_cmd(c, "DATA").startswith("354 ")
        c.sock.sendall(f"From: <{USER}>\r\nSubject: uvloop\r\n\r\nhello\r\n.\r\n".encode())
        assert smtp_reply(c).startswith("250 ")
        assert smtp_cmd(c, "QUIT").startswith("221 ")
    finally:
        c.close()


def imap_session(port: int, ctx: ssl.SSLContext, *, starttls: bool) -> int:
    """SCRAM-SHA-256-PLUS login; the number of messages in Inbox."""
    c = Lines(port)
    try:
        if not starttls:
            c.start_tls(ctx)
        assert c.line().startswith("* OK ")
        if starttls:
            c.send("a1 STARTTLS")
            assert c.line().startswith("a1 OK")
            c.start_tls(ctx)

        def first(data: str) -> str:
            c.send(f"a2 AUTHENTICATE SCRAM-SHA-256-PLUS {data}")
            line = c.line()
            assert line.startswith("+ "), line
            return line[2:]

        def step(data: str) -> str:
            c.send(data)
            line = c.line()
            assert line.startswith("+ "), line
            return line[2:]

        final, expected = scram_plus(first, step, c.exporter())
        assert final == expected
        c.send("")
        assert c.line().startswith("a2 OK")
        c.send("a3 STATUS Inbox (MESSAGES)")
        status = c.line()
        assert c.line().startswith("a3 OK")
        assert status.startswith('* STATUS "Inbox" (MESSAGES ')
        return int(status.rsplit(" ", 1)[1].rstrip(")"))
    finally:
        c.close()


@pytest.mark.parametrize(
    ("env", "loop"),
    [({}, "uvloop.Loop"), ({"MOX_NO_UVLOOP": "1"}, "asyncio.unix_events._UnixSelectorEventLoop")],
)
def test_serve_loop_tls_scram_plus(
    start: Callable[[dict[str, str]], Serve], ca: trustme.CA, env: dict[str, str], loop: str
) -> None:
    srv = start(env)
    assert f"loop={loop}" in srv.loop_line()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    smtp_session(srv.ports["submission"], ctx, starttls=True)
    smtp_session(srv.ports["submissions"], ctx, starttls=False)
    assert imap_session(srv.ports["imap"], ctx, starttls=True) == 2
    assert imap_session(srv.ports["imaps"], ctx, starttls=False) == 2
