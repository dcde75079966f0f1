"""End to end: submitted on our port 587, delivered by our queue into Postfix (Debian) over TLS.

DNS for remote.test comes from Knot (DNSSEC-signed) behind Unbound, including a TLSA record
for Postfix's certificate at `_<port>._tcp.mx.remote.test`. With a matching TLSA record the
message arrives over TLS and carries a DKIM signature that verifies; with a wrong one it stays in
our queue and Postfix never sees it.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import time
from pathlib import Path
from typing import Any

import dkim
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mox.dkim.keys import generate_key, public_record, write_key
from mox.dns.resolver import DnsPythonResolver
from tests.dns.lab import Knot, Unbound
from tests.integration.postfix import Postfix
from tests.serverthread import PASSWORD, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MESSAGE = (
    b"From: Alice <alice@example.test>\r\nTo: Bob <bob@remote.test>\r\n"
    b"Subject: to postfix\r\nMessage-Id: <pf2@example.test>\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nover DANE-verified TLS\r\n"
)


def zone(postfix_port: int, tlsa: str) -> str:
    return f"""$ORIGIN remote.test.
$TTL 60
@ IN SOA ns.remote.test. hostmaster.remote.test. 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
@ IN MX 10 mx.remote.test.
mx IN A 127.0.0.1
_{postfix_port}._tcp.mx IN TLSA 3 1 1 {tlsa}
"""


@pytest.mark.parametrize("matching", [True, False])
def test_submitted_mail_reaches_postfix_over_dane(tmp_path: Path, matching: bool) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("mx.remote.test")
    leaf = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.sha256(spki if matching else b"not the key").hexdigest()
    pem = b"".join(c.bytes() for c in cert.cert_chain_pems)
    postfix = Postfix(
        1,
        ["relay.invalid"],
        mailboxes=["bob@remote.test"],
        tls_pem=(pem, cert.private_key_pem.bytes()),
    ).start()
    knot = Knot(
        tmp_path / "knot", {"remote.test": zone(postfix.port, digest)}, signed={"remote.test"}
    ).start()
    unbound = Unbound(tmp_path / "unbound", knot, knot.trust_anchors()).start()
    key = generate_key("rsa2048")
    write_key(tmp_path / "dkim.pem", key)
    record = public_record(key).to_text().encode()

    def tweak(data: dict[str, Any]) -> None:
        data["domains"]["example.test"]["dkim"] = {
            "selectors": {"s1": {"private_key_file": str(tmp_path / "dkim.pem")}},
            "sign": ["s1"],
        }
        data["queue"] = {"direct_port": postfix.port, "first_retry_seconds": 60}

    resolver = DnsPythonResolver([("127.0.0.1", unbound.port)])
    srv, ports = start_server(tmp_path, trustme.CA(), tweak, resolver=resolver)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=10) as c:
            c.starttls(context=ctx)
            c.login("alice@example.test", PASSWORD)
            assert c.sendmail("alice@example.test", ["bob@remote.test"], MESSAGE) == {}
        assert srv.running is not None
        queue = srv.running.queue
        assert queue is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msgs = srv.call(queue.messages())
            if not msgs or msgs[0].attempts:
                break
            time.sleep(0.1)
        if matching:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not postfix.delivered("bob@remote.test"):
                time.sleep(0.1)
            (got,) = postfix.delivered("bob@remote.test")
            assert b"(using TLSv1.3 with cipher" in got  # Postfix's own Received header
            assert got.rstrip(b"\n").endswith(b"over DANE-verified TLS")
            wire = got.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            assert dkim.verify(wire, dnsfunc=lambda name, timeout=5: record)
            assert srv.call(queue.messages()) == []
        else:
            (m,) = srv.call(queue.messages())
            assert m.attempts == 1
            assert "does not match TLSA" in m.last_error
            time.sleep(0.5)
            assert postfix.delivered("bob@remote.test") == []  # never sent in plaintext
    finally:
        srv.stop()
        unbound.stop()
        knot.stop()
        postfix.stop()
