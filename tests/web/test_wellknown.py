"""The HTTP/HTTPS listener: MTA-STS policy, client autoconfiguration, redirects, headers, and
live certificate swaps, against the real server over loopback with httpx and ssl clients."""

from __future__ import annotations

import plistlib
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from mox.dns.records import MtaStsPolicy
from tests.conftest import free_port
from tests.serverthread import ServerThread, start_server, tls_files

Server = tuple[ServerThread, dict[str, int]]
WEB: dict[str, int] = {}


def tweak(data: dict[str, Any]) -> None:
    WEB["http"], WEB["https"] = free_port(), free_port()
    listener = data["listeners"]["test"]
    listener["http"] = {"enabled": True, "port": WEB["http"]}
    listener["https"] = {"enabled": True, "port": WEB["https"]}
    data["domains"]["example.test"]["mta_sts"] = {
        "policy_id": "20261125",
        "mode": "enforce",
        "max_age": 86400,
    }


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, ca, tweak)
    yield srv, {**ports, **WEB}
    srv.stop()


def client(ca: trustme.CA, host: str) -> httpx.Client:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    # Connect to loopback while asking for `host` (SNI and Host header), like curl --resolve.
    return httpx.Client(verify=ctx, headers={"Host": host}, timeout=10)


def test_mta_sts_policy_matches_config(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    with client(ca, "mta-sts.example.test") as c:
        r = c.get(
            f"https://127.0.0.1:{ports['https']}/.well-known/mta-sts.txt",
            extensions={"sni_hostname": "mta-sts.example.test"},
        )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert (
        r.text == "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 86400\r\n"
    )
    policy = MtaStsPolicy.parse(r.text)  # RFC 8461 §3.2, our own parser agrees
    assert policy.mx == ("mail.example.test",)
    assert r.headers["strict-transport-security"] == "max-age=31536000"
    assert r.headers["x-content-type-options"] == "nosniff"
    with client(ca, "mta-sts.other.test") as c:  # no policy configured for other.test
        r = c.get(
            f"https://127.0.0.1:{ports['https']}/.well-known/mta-sts.txt",
            extensions={"sni_hostname": "mta-sts.other.test"},
        )
    assert r.status_code == 404


def test_thunderbird_autoconfig(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    with client(ca, "autoconfig.example.test") as c:
        r = c.get(
            f"https://127.0.0.1:{ports['https']}/mail/config-v1.1.xml",
            params={"emailaddress": "alice@example.test"},
            extensions={"sni_hostname": "autoconfig.example.test"},
        )
    assert r.status_code == 200
    root = ET.fromstring(r.content)  # noqa: S314 (our own server's output)
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.get("id") == "example.test"
    imap = provider.find("incomingServer")
    smtp = provider.find("outgoingServer")
    assert imap is not None
    assert smtp is not None
    assert (imap.get("type"), imap.findtext("port"), imap.findtext("socketType")) == (
        "imap",
        str(ports["imaps"]),
        "SSL",
    )
    assert (smtp.get("type"), smtp.findtext("port"), smtp.findtext("socketType")) == (
        "smtp",
        str(ports["submissions"]),
        "SSL",
    )
    assert imap.findtext("hostname") == "mail.example.test"
    assert imap.findtext("username") == "%EMAILADDRESS%"


def test_autodiscover_and_mobileconfig(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    request = (
        b'<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        b'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>bob@other.test'
        b"</EMailAddress></Request></Autodiscover>"
    )
    with client(ca, "mail.example.test") as c:
        r = c.post(
            f"https://127.0.0.1:{ports['https']}/autodiscover/autodiscover.xml",
            content=request,
            extensions={"sni_hostname": "mail.example.test"},
        )
        assert r.status_code == 200
        assert b"<Type>IMAP</Type><Server>mail.example.test</Server>" in r.content
        assert f"<Port>{ports['submissions']}</Port>".encode() in r.content
        hostile = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
        r = c.post(
            f"https://127.0.0.1:{ports['https']}/autodiscover/autodiscover.xml",
            content=hostile,
            extensions={"sni_hostname": "mail.example.test"},
        )
        assert r.status_code == 400  # defusedxml refuses entities
        r = c.get(
            f"https://127.0.0.1:{ports['https']}/profile.mobileconfig",
            params={"email": "alice@example.test"},
            extensions={"sni_hostname": "mail.example.test"},
        )
        assert r.status_code == 200
        profile = plistlib.loads(r.content)
        mail = profile["PayloadContent"][0]
        assert mail["IncomingMailServerPortNumber"] == ports["imaps"]
        assert mail["EmailAddress"] == "alice@example.test"
        r = c.get(
            f"https://127.0.0.1:{ports['https']}/profile.mobileconfig",
            params={"email": "nobody@example.test"},
            extensions={"sni_hostname": "mail.example.test"},
        )
        assert r.status_code == 404


def test_plain_http_redirects_and_serves_acme_tokens(server: Server) -> None:
    _srv, ports = server
    with httpx.Client(timeout=10, headers={"Host": "mail.example.test"}) as c:
        r = c.get(f"http://127.0.0.1:{ports['http']}/mail/config-v1.1.xml?emailaddress=a%40b")
        assert r.status_code == 308
        assert r.headers["location"] == (
            f"https://mail.example.test:{ports['https']}/mail/config-v1.1.xml?emailaddress=a%40b"
        )
        assert "strict-transport-security" not in r.headers  # only over HTTPS
        assert (
            c.get(f"http://127.0.0.1:{ports['http']}/.well-known/acme-challenge/x").status_code
            == 404
        )
        assert c.get(f"http://127.0.0.1:{ports['http']}/health").text == "ok\n"


def _peer_serial(port: int, ca: trustme.CA) -> int:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="mail.example.test") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_reload_swaps_live(server: Server, ca: trustme.CA, tmp_path: Path) -> None:
    srv, ports = server
    assert srv.running is not None
    before = _peer_serial(ports["imaps"], ca)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    open_conn = ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", ports["imaps"]), timeout=10),
        server_hostname="mail.example.test",
    )
    try:
        assert open_conn.recv(4096).startswith(b"* OK")
        # A new certificate is written over the files, then SIGHUP's reload runs.
        new_dir = tmp_path / "new"
        new_dir.mkdir()
        cert_file, key_file = tls_files(new_dir, ca)
        holder = srv.running.tls["test"]
        assert holder.source is not None
        holder.source[0].write_bytes(cert_file.read_bytes())
        holder.source[1].write_bytes(key_file.read_bytes())

        async def reload() -> None:
            srv.running.reload_certificates() if srv.running else None

        srv.call(reload())
        for service in ("imaps", "submissions", "https"):
            assert _peer_serial(ports[service], ca) != before, service
        open_conn.sendall(b"a1 NOOP\r\n")
        assert b"a1 OK" in open_conn.recv(4096)  # the connection from before still works
    finally:
        open_conn.close()
