"""Certificates from a real ACME CA: Pebble (Debian) on loopback, names resolved by Knot.

Pebble validates tls-alpn-01 against our HTTPS listener and http-01 against our HTTP listener
(its `tlsPort`/`httpPort` point at them); the certificate is then presented by IMAPS, SMTPS and
HTTPS. A forced renewal swaps the certificate while an IMAP connection stays open.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomlkit
import trustme
from cryptography import x509

from mox.config.load import load_config
from tests.conftest import free_port, minimal_config
from tests.dns.lab import Knot, need, stop
from tests.serverthread import ServerThread

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ZONE = """$ORIGIN example.test.
$TTL 300
@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
mail IN A 127.0.0.1
mta-sts IN A 127.0.0.1
autoconfig IN A 127.0.0.1
"""


class Pebble:
    def __init__(self, base: Path, dns_port: int, http_port: int, tls_port: int) -> None:
        self.dir = base
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_pem.write_to_path(str(base / "pebble.key"))
        cert.cert_chain_pems[0].write_to_path(str(base / "pebble.crt"))
        self.ca.cert_pem.write_to_path(str(base / "pebble-ca.pem"))
        self.port, self.mgmt = free_port(), free_port()
        conf = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt}",
                "certificate": str(base / "pebble.crt"),
                "privateKey": str(base / "pebble.key"),
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (base / "pebble.json").write_text(json.dumps(conf))
        self.log = base / "pebble.log"
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    need("pebble"),
                    "-config",
                    str(base / "pebble.json"),
                    "-dnsserver",
                    f"127.0.0.1:{dns_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        stop(self.proc)
        pytest.fail(f"pebble not listening: {self.log.read_text()}")

    def root(self) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.dir / "pebble-ca.pem"))
        r = httpx.get(f"https://127.0.0.1:{self.mgmt}/roots/0", verify=ctx, timeout=10)
        r.raise_for_status()
        return r.content


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[Knot]:
    k = Knot(tmp_path / "knot", {"example.test": ZONE}, signed=set()).start()
    yield k
    k.stop()


def config(base: Path, pebble: Pebble, ports: dict[str, int], challenge: str) -> Path:
    data = minimal_config()
    data["acme"] = {
        "pebble": {
            "directory_url": f"https://127.0.0.1:{pebble.port}/dir",
            "contact_email": "postmaster@example.test",
            "challenges": [challenge],
            "ca_file": str(base / "pebble-ca.pem"),
        }
    }
    data["domains"]["example.test"]["mta_sts"] = {"policy_id": "1", "mode": "enforce"}
    data["listeners"] = {
        "public": {
            "ips": ["127.0.0.1"],
            "tls": {"acme": "pebble"},
            **{k: {"enabled": True, "port": p} for k, p in ports.items()},
        }
    }
    path = base / "mox.toml"
    path.write_text(tomlkit.dumps(data))
    return path


def served_cert(port: int, root: bytes, name: str) -> x509.Certificate:
    ctx = ssl.create_default_context(cadata=root.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
def test_certificate_from_pebble(tmp_path: Path, knot: Knot, challenge: str) -> None:
    ports = {k: free_port() for k in ("http", "https", "imaps", "submissions", "smtp")}
    pebble = Pebble(tmp_path, knot.port, ports["http"], ports["https"])
    server: ServerThread | None = None
    try:
        server = ServerThread(load_config(config(tmp_path, pebble, ports, challenge))).start()
        root = pebble.root()
        certs = {
            svc: served_cert(ports[svc], root, "mail.example.test")
            for svc in ("imaps", "submissions", "https")
        }
        names = (
            certs["imaps"]
            .extensions.get_extension_for_class(x509.SubjectAlternativeName)
            .value.get_values_for_type(x509.DNSName)
        )
        assert sorted(names) == [
            "autoconfig.example.test",
            "mail.example.test",
            "mta-sts.example.test",
        ]
        assert len({c.serial_number for c in certs.values()}) == 1  # one certificate, shared
        with httpx.Client(
            verify=ssl.create_default_context(cadata=root.decode()), timeout=10
        ) as web:
            policy = web.get(
                f"https://127.0.0.1:{ports['https']}/.well-known/mta-sts.txt",
                headers={"Host": "mta-sts.example.test"},
                extensions={"sni_hostname": "mta-sts.example.test"},
            )
        assert policy.text.startswith("version: STSv1\r\nmode: enforce\r\n")

        # Forced renewal while an IMAP session is open: new connections get the new one.
        assert server.running is not None
        manager = server.running.acme["public"]
        ctx = ssl.create_default_context(cadata=root.decode())
        conn = ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", ports["imaps"]), timeout=10),
            server_hostname="mail.example.test",
        )
        try:
            assert conn.recv(4096).startswith(b"* OK")
            server.call(manager.obtain(), timeout=120)
            renewed = served_cert(ports["imaps"], root, "mail.example.test")
            assert renewed.serial_number != certs["imaps"].serial_number
            assert renewed.public_key().public_bytes(*_spki()) == certs[
                "imaps"
            ].public_key().public_bytes(*_spki())  # same key: TLSA stays valid
            conn.sendall(b"a1 NOOP\r\n")
            assert b"a1 OK" in conn.recv(4096)
        finally:
            conn.close()
    finally:
        if server is not None:
            server.stop()
        stop(pebble.proc)
    # Pebble validated authorizations, over HTTP only when that was the challenge asked for.
    log = pebble.log.read_text()
    assert "set VALID by completed challenge" in log
    assert ("validate w/ HTTP" in log) == (challenge == "http-01")


def _spki() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    return (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
