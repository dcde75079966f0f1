"""tls-exporter (RFC 9266) from our ctypes bridge equals what `openssl s_client` exports."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import trustme

from mox.tls.channelbinding import channel_bindings, tls_exporter


def server_ctx(tmp_path: Path, ca: trustme.CA, version: ssl.TLSVersion) -> ssl.SSLContext:
    cert = ca.issue_cert("localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def test_exporter_matches_both_ends_and_differs_per_connection(tmp_path: Path) -> None:
    ca = trustme.CA()
    sctx = server_ctx(tmp_path, ca, ssl.TLSVersion.TLSv1_3)
    cctx = ssl.create_default_context()
    ca.configure_trust(cctx)
    values = []
    for _ in range(2):
        a, b = socket.socketpair()
        result: dict[str, bytes | None] = {}

        def serve(sock: socket.socket = b, out: dict[str, bytes | None] = result) -> None:
            with sctx.wrap_socket(sock, server_side=True) as s:
                out["server"] = tls_exporter(s)
                s.recv(1)

        t = threading.Thread(target=serve)
        t.start()
        with cctx.wrap_socket(a, server_hostname="localhost") as c:
            client = tls_exporter(c)
            c.sendall(b"x")
        t.join(10)
        assert client is not None
        assert len(client) == 32
        assert result["server"] == client
        values.append(client)
    assert values[0] != values[1]


def test_tls12_offers_tls_unique_not_exporter(tmp_path: Path) -> None:
    ca = trustme.CA()
    sctx = server_ctx(tmp_path, ca, ssl.TLSVersion.TLSv1_2)
    cctx = ssl.create_default_context()
    ca.configure_trust(cctx)
    a, b = socket.socketpair()
    got: dict[str, dict[str, bytes]] = {}

    def serve() -> None:
        with sctx.wrap_socket(b, server_side=True) as s:
            got["server"] = channel_bindings(s)
            s.recv(1)

    t = threading.Thread(target=serve)
    t.start()
    with cctx.wrap_socket(a, server_hostname="localhost") as c:
        client = channel_bindings(c)
        c.sendall(b"x")
    t.join(10)
    assert set(client) == {"tls-unique"}
    assert set(got["server"]) == {"tls-unique"}
    assert channel_bindings(None) == {}


@pytest.mark.integration
def test_exporter_equals_openssl_s_client(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed (scripts/system_deps.py installs it)")
    ca = trustme.CA()
    sctx = server_ctx(tmp_path, ca, ssl.TLSVersion.TLSv1_3)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    got: dict[str, bytes | None] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with sctx.wrap_socket(conn, server_side=True) as s:
            got["server"] = tls_exporter(s)
            s.sendall(b"bye\n")

    t = threading.Thread(target=serve)
    t.start()
    res = subprocess.run(
        [
            openssl,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-tls1_3",
            "-keymatexport",
            "EXPORTER-Channel-Binding",
            "-keymatexportlen",
            "32",
        ],
        input=b"",
        capture_output=True,
        timeout=30,
    )
    t.join(10)
    listener.close()
    match = re.search(rb"Keying material: ([0-9A-F]+)", res.stdout)
    assert match, res.stdout.decode(errors="replace")
    assert got["server"] == bytes.fromhex(match.group(1).decode())
