"""SCRAM-SHA-1/256 and their -PLUS variants over real SMTP connections on port 465.

-PLUS is checked both with tls-unique on TLS 1.2 (client: the independent scramp package) and
with tls-exporter (RFC 9266) on TLS 1.3 (client: the RFC 5802 §3 computation written out here,
since scramp has no tls-exporter yet).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import scramp
import trustme

from mox.tls.channelbinding import tls_exporter
from tests.serverthread import PASSWORD, ServerThread, start_server
from tests.smtpserver.raw import Raw

Server = tuple[ServerThread, dict[str, int]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, ca)
    yield srv, ports
    srv.stop()


def connect(port: int, ca: trustme.CA, tls12: bool = False) -> Raw:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = Raw(port)
    raw.start_tls(ctx, "localhost")
    assert raw.reply().startswith("220")
    assert raw.cmd("EHLO laptop").startswith("250-")
    return raw


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(reply: str) -> str:
    assert reply.startswith("334 "), reply
    return base64.b64decode(reply[4:]).decode()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_with_scramp(server: Server, ca: trustme.CA, mech: str) -> None:
    _, ports = server
    raw = connect(ports["submissions"], ca)
    try:
        client = scramp.ScramClient([mech], "alice@example.test", PASSWORD)
        server_first = unb64(raw.cmd(f"AUTH {mech} {b64(client.get_client_first())}"))
        client.set_server_first(server_first)
        server_final = unb64(raw.cmd(b64(client.get_client_final())))
        client.set_server_final(server_final)  # verifies the server's signature
        assert raw.cmd("").startswith("235 2.7.0")
        assert raw.cmd("MAIL FROM:<alice@example.test>").startswith("250")
    finally:
        raw.close()


def test_scram_wrong_password_refused(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    raw = connect(ports["submissions"], ca)
    try:
        client = scramp.ScramClient(["SCRAM-SHA-256"], "alice@example.test", "wrong")
        first = unb64(raw.cmd(f"AUTH SCRAM-SHA-256 {b64(client.get_client_first())}"))
        client.set_server_first(first)
        assert raw.cmd(b64(client.get_client_final())) == "535 5.7.8 bad user/pass"
        assert raw.cmd("MAIL FROM:<alice@example.test>").startswith("530")
    finally:
        raw.close()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_scram_plus_tls_unique_tls12(server: Server, ca: trustme.CA, mech: str) -> None:
    _, ports = server
    raw = connect(ports["submissions"], ca, tls12=True)
    try:
        assert isinstance(raw.sock, ssl.SSLSocket)
        binding = ("tls-unique", raw.sock)  # scramp reads the binding from the socket
        client = scramp.ScramClient([mech], "bob@other.test", PASSWORD, channel_binding=binding)
        first = unb64(raw.cmd(f"AUTH {mech} {b64(client.get_client_first())}"))
        client.set_server_first(first)
        client.set_server_final(unb64(raw.cmd(b64(client.get_client_final()))))
        assert raw.cmd("").startswith("235")
    finally:
        raw.close()


def scram_exporter_login(raw: Raw, user: str, password: str, cb_data: bytes) -> str:
    """RFC 5802 §3 client with the tls-exporter binding (RFC 9266), SHA-256."""
    gs2 = "p=tls-exporter,,"
    nonce = secrets.token_urlsafe(18)
    first_bare = f"n={user},r={nonce}"
    server_first = unb64(raw.cmd(f"AUTH SCRAM-SHA-256-PLUS {b64(gs2 + first_bare)}"))
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    final_wo_proof = f"c={b64(gs2.encode() + cb_data)},r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{final_wo_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    reply = raw.cmd(b64(f"{final_wo_proof},p={b64(proof)}"))
    if not reply.startswith("334 "):
        return reply
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = "v=" + b64(hmac.digest(server_key, auth_message, "sha256"))
    assert unb64(reply) == expected  # the server knows the password too
    return raw.cmd("")


def test_scram_plus_tls_exporter_tls13(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    raw = connect(ports["submissions"], ca)
    try:
        assert isinstance(raw.sock, ssl.SSLSocket)
        assert raw.sock.version() == "TLSv1.3"
        exporter = tls_exporter(raw.sock)
        assert exporter is not None
        assert scram_exporter_login(raw, "alice@example.test", PASSWORD, exporter).startswith("235")
    finally:
        raw.close()
    # A man in the middle has another TLS session, so other binding data: refused.
    raw = connect(ports["submissions"], ca)
    try:
        reply = scram_exporter_login(raw, "alice@example.test", PASSWORD, b"\x00" * 32)
        assert reply == "501 5.5.2 malformed authentication data"
    finally:
        raw.close()


def test_auth_cancel_and_bad_base64(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    raw = connect(ports["submissions"], ca)
    try:
        assert raw.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"  # "Username:"
        assert raw.cmd("*") == "501 5.0.0 authentication aborted"  # RFC 4954 §4
        assert raw.cmd("AUTH PLAIN !!!") == "501 5.5.2 invalid base64"
        assert raw.cmd("AUTH NTLM").startswith("504 5.5.4")
        plain = b64(b"\x00alice@example.test\x00" + PASSWORD.encode())
        assert raw.cmd(f"AUTH PLAIN {plain}").startswith("235")
        assert raw.cmd(f"AUTH PLAIN {plain}").startswith("503 5.5.1")  # already authenticated
    finally:
        raw.close()
