"""Transport security of outgoing mail with real DNS: Knot signs remote.test, Unbound validates.

- DANE (RFC 7672): a TLSA record matching the remote's key → delivered over verified TLS; a
  TLSA record that does not match → deferred, and nothing is ever sent in plaintext.
- MTA-STS (RFC 8461) enforce: a certificate valid for the policy's MX → delivered; one that is
  not → deferred, nothing sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mox.config.load import LoadedConfig, parse_config
from mox.dns.resolver import DnsPythonResolver
from mox.queue.queue import Queue
from mox.store import Store
from tests.conftest import free_port, minimal_config
from tests.dns.lab import Knot, Unbound
from tests.queue.helpers import add_for_bob
from tests.queue.remote import Remote

pytestmark = pytest.mark.integration

MESSAGE = b"From: alice@example.test\r\nSubject: secure\r\n\r\nover TLS only\r\n"


def zone(extra: str) -> str:
    return f"""$ORIGIN remote.test.
$TTL 60
@ IN SOA ns.remote.test. hostmaster.remote.test. 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
@ IN MX 10 mx.remote.test.
mx IN A 127.0.0.1
mta-sts IN A 127.0.0.1
{extra}
"""


def tls_server(ca: trustme.CA, name: str) -> tuple[ssl.SSLContext, bytes]:
    cert = ca.issue_cert(name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ctx, hashlib.sha256(spki).digest()


class Lab:
    def __init__(self, base: Path, extra: str) -> None:
        self.knot = Knot(base / "knot", {"remote.test": zone(extra)}, signed={"remote.test"})
        self.knot.start()
        self.unbound = Unbound(base / "unbound", self.knot, self.knot.trust_anchors()).start()

    def resolver(self) -> DnsPythonResolver:
        return DnsPythonResolver([("127.0.0.1", self.unbound.port)])

    def stop(self) -> None:
        self.unbound.stop()
        self.knot.stop()


def config(tmp_path: Path, port: int, **extra: Any) -> LoadedConfig:
    data = minimal_config()
    data["queue"] = {"direct_port": port, "first_retry_seconds": 30, **extra.pop("queue", {})}
    data.update(extra)
    return parse_config(data, tmp_path / "mox.toml")


async def settle(q: Queue, timeout: float = 20) -> None:
    """Until the first attempt has been made (delivered or deferred)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = await q.messages()
        if not msgs or msgs[0].attempts >= 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no delivery attempt in time")


@pytest.mark.parametrize("matching", [True, False])
async def test_dane(tmp_path: Path, store: Store, matching: bool) -> None:
    ca = trustme.CA()
    ctx, spki_hash = tls_server(ca, "mx.remote.test")
    remote = Remote(tls=ctx)
    digest = spki_hash if matching else hashlib.sha256(b"another key").digest()
    lab = Lab(tmp_path, f"_{remote.port}._tcp.mx IN TLSA 3 1 1 {digest.hex()}")
    q = Queue(config(tmp_path, remote.port), store, lab.resolver())
    await q.start()
    try:
        await add_for_bob(q, MESSAGE)
        await settle(q)
        if matching:
            assert not await q.messages()
            (got,) = remote.handler.received
            assert got.tls
            assert got.data == MESSAGE
        else:
            (m,) = await q.messages()
            assert "does not match TLSA" in m.last_error
            assert remote.handler.received == []  # no plaintext fallback
    finally:
        await q.stop()
        remote.stop()
        lab.stop()


class PolicyHandler(http.server.BaseHTTPRequestHandler):
    policy = b""

    def do_GET(self) -> None:
        ok = self.path == "/.well-known/mta-sts.txt"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if ok:
            self.wfile.write(self.policy)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[tuple[int, trustme.CA]]:
    ca = trustme.CA()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), PolicyHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("mta-sts.remote.test").configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    PolicyHandler.policy = (
        b"version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\nmax_age: 86400\r\n"
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("cert_name", ["mx.remote.test", "wrong.remote.test"])
async def test_mta_sts_enforce(
    tmp_path: Path, store: Store, policy_server: tuple[int, trustme.CA], cert_name: str
) -> None:
    port, ca = policy_server
    ctx, _ = tls_server(ca, cert_name)
    remote = Remote(tls=ctx)
    lab = Lab(tmp_path, '_mta-sts IN TXT "v=STSv1; id=20261125"')
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cfg = config(tmp_path, remote.port, queue={"mtasts_port": port}, tls_ca_files=[str(ca_file)])
    q = Queue(cfg, store, lab.resolver())
    await q.start()
    try:
        await add_for_bob(q, MESSAGE)
        await settle(q)
        if cert_name == "mx.remote.test":
            assert not await q.messages()
            assert remote.handler.received[0].tls
        else:
            (m,) = await q.messages()
            assert "TLS with mx.remote.test" in m.last_error
            assert remote.handler.received == []  # enforce: never without valid TLS
    finally:
        await q.stop()
        remote.stop()
        lab.stop()
