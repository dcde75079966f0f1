"""localserve makes no DNS query: SPF, DKIM and DMARC for hosted domains come from the config,
as mox's localserve mocks them; submissions are signed with the configured selectors."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.asyncresolver
import pytest
import trustme

from mox.dkim.keys import generate_key, write_key
from tests.serverthread import PASSWORD, ServerThread, start_server
from tests.smtpserver.raw import stored

Server = tuple[ServerThread, dict[str, int]]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, trustme.CA]]:
    async def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError("localserve asked DNS")

    monkeypatch.setattr(dns.asyncresolver.Resolver, "resolve", no_dns)
    key_file = tmp_path / "localserve.ed25519.privatekey.pkcs8.pem"
    write_key(key_file, generate_key("ed25519"))

    def tweak(data: dict[str, Any]) -> None:
        data["domains"]["example.test"]["dkim"] = {
            "selectors": {"localserve": {"private_key_file": str(key_file)}},
            "sign": ["localserve"],
        }

    ca = trustme.CA()
    srv, ports = start_server(tmp_path, ca, tweak, localserve=True)
    yield (srv, ports), ca
    srv.stop()


def test_localserve_results_come_from_the_config(server: tuple[Server, trustme.CA]) -> None:
    (srv, ports), ca = server
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    body = (
        b"From: alice@example.test\r\nTo: bob@other.test\r\nSubject: local\r\n"
        b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nhi\r\n"
    )
    with smtplib.SMTP_SSL("127.0.0.1", ports["submissions"], context=ctx, timeout=10) as c:
        c.login("alice@example.test", PASSWORD)
        assert c.sendmail("alice@example.test", ["bob@other.test"], body) == {}
    (submitted,) = stored(srv, "bob", "Lists/Bob")
    assert b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.test;" in submitted
    signed = submitted[submitted.index(b"DKIM-Signature:") :]
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.ehlo("localhost")
        assert c.sendmail("alice@example.test", ["alice@example.test"], signed) == {}
        # Any sender is fine in localserve: no MAIL FROM domain lookup.
        assert c.sendmail("x@nowhere.example", ["alice@example.test"], body) == {}
    first, second = stored(srv, "alice", "Inbox")
    head = first.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ")
    assert (
        "Authentication-Results: mail.example.test (localserve: DNS answers come from the "
        "config, no queries are made);"
    ) in head
    assert "iprev=pass (without dnssec) policy.iprev=127.0.0.1 (mail.example.test)" in head
    assert "dkim=pass (256 bit ed25519, without dnssec) header.d=example.test" in head
    assert "spf=pass (without dnssec) smtp.mailfrom=example.test" in head
    assert "dmarc=none" in head
    assert b"spf=none (without dnssec) smtp.mailfrom=nowhere.example" in second.replace(
        b"\r\n\t", b" "
    )
