"""The web API and webhooks against a real server: HTTPS listener on loopback, httpx as client,
a loopback remote MTA (aiosmtpd) for other domains, and a loopback webhook receiver."""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from mox.dns.resolver import MockResolver
from tests.conftest import free_port
from tests.queue.remote import Remote
from tests.serverthread import PASSWORD, ServerThread, mock_world, start_server
from tests.smtpserver.raw import stored
from tests.webapi.hooks import Receiver

ALICE = ("alice@example.test", PASSWORD)
BOB = ("bob@other.test", PASSWORD)


@dataclass
class Setup:
    srv: ServerThread
    ports: dict[str, int]
    remote: Remote
    hooks: Receiver
    ca: trustme.CA

    def client(self, auth: tuple[str, str] | None = ALICE) -> httpx.Client:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.ports['https']}/webapi/v0/",
            verify=ctx,
            auth=auth,
            timeout=20,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    remote = Remote(rcpt_replies={"nobody@remote.test": "550 5.1.1 no such user"})
    hooks = Receiver()
    https = free_port()

    def tweak(data: dict[str, Any]) -> None:
        data["listeners"]["test"]["https"] = {"enabled": True, "port": https}
        data["queue"] = {"direct_port": remote.port, "first_retry_seconds": 0.2}
        data["accounts"]["alice"]["outgoing_webhook"] = {
            "url": hooks.url("/out"),
            "authorization": "Bearer out-secret",
        }
        data["accounts"]["alice"]["incoming_webhook"] = {"url": hooks.url("/in")}

    world = mock_world()
    resolver = MockResolver(
        {
            **dict(world.records.items()),
            ("remote.test", "MX"): ["10 mx.remote.test."],
            ("mx.remote.test", "A"): ["127.0.0.1"],
        }
    )
    ca = trustme.CA()
    srv, ports = start_server(tmp_path, ca, tweak, resolver=resolver)
    assert srv.running is not None
    assert srv.running.webhooks is not None
    srv.running.webhooks.first_retry = 0.2  # tests: no minute-long waits
    yield Setup(srv, {**ports, "https": https}, remote, hooks, ca)
    srv.stop()
    remote.stop()
    hooks.stop()


def send_request(to: str, **message: Any) -> dict[str, Any]:
    return {
        "Message": {
            "From": {"Name": "Alice", "Address": "alice@example.test"},
            "To": [{"Name": "Them", "Address": to}],
            "Subject": "hello via api",
            "Text": "plain body\n",
            **message,
        }
    }


def wait_remote(remote: Remote, count: int = 1) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(remote.handler.received) < count:
        time.sleep(0.05)


def test_send_local_arrives_then_get_and_flags(setup: Setup) -> None:
    with setup.client() as c:
        r = c.post(
            "Send",
            json=send_request("bob@other.test", HTML="<p>html body</p>", CC=[], BCC=[]),
        )
    assert r.status_code == 200, r.text
    res = r.json()
    msgid = res["MessageID"]
    assert msgid.startswith("<")
    assert msgid.endswith("@mail.example.test>")
    # Local recipients are delivered at once, not queued.
    assert res["Submissions"] == [{"Address": "bob@other.test", "QueueMsgID": None}]
    (data,) = stored(setup.srv, "bob", "Lists/Bob")
    assert f"Message-Id: {msgid}\r\n".encode() in data
    assert data.startswith(b"Authentication-Results: mail.example.test; auth=pass")
    assert b"Subject: hello via api\r\n" in data
    assert b"From: Alice <alice@example.test>\r\n" in data
    assert b"multipart/alternative" in data

    with setup.client(BOB) as c:
        r = c.post("MessageGet", json={"Mailbox": "Lists/Bob", "UID": 1})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["Subject"] == "hello via api"
        assert got["MessageID"] == msgid
        assert got["From"] == [{"Name": "Alice", "Address": "alice@example.test"}]
        assert got["Text"] == "plain body\n"
        assert got["HTML"] == "<p>html body</p>\n"
        assert got["Flags"] == []
        assert ["Subject", "hello via api"] in got["Headers"]
        r = c.post(
            "MessageFlagsAdd", json={"Mailbox": "Lists/Bob", "UID": 1, "Flags": ["\\Seen", "todo"]}
        )
        assert r.status_code == 200, r.text
        assert r.json()["Flags"] == ["\\Seen", "todo"]
        r = c.post(
            "MessageFlagsRemove", json={"Mailbox": "Lists/Bob", "UID": 1, "Flags": ["\\Seen"]}
        )
        assert r.json()["Flags"] == ["todo"]
        r = c.post("MessageGet", json={"Mailbox": "Lists/Bob", "UID": 2})
        assert r.status_code == 404
        assert r.json()["Code"] == "notFound"
        # Alice cannot read Bob's mailbox: the account comes from the credentials.
    with setup.client() as c:
        r = c.post("MessageGet", json={"Mailbox": "Lists/Bob", "UID": 1})
        assert r.status_code == 404


def test_send_remote_delivered_with_outgoing_webhook(setup: Setup) -> None:
    # mox's clients send the JSON in form field "request".
    with setup.client() as c:
        r = c.post("Send", data={"request": json.dumps(send_request("carol@remote.test"))})
    assert r.status_code == 200, r.text
    res = r.json()
    (sub,) = res["Submissions"]
    assert sub["Address"] == "carol@remote.test"
    assert isinstance(sub["QueueMsgID"], int)
    assert sub["QueueMsgID"] > 0
    wait_remote(setup.remote)
    (got,) = setup.remote.handler.received
    assert got.rcpts == ["carol@remote.test"]
    assert got.mail_from == "alice@example.test"
    assert f"Message-Id: {res['MessageID']}".encode() in got.data
    assert got.data.endswith(b"plain body\r\n")
    (hit,) = setup.hooks.wait("/out")
    assert hit.headers["Authorization"] == "Bearer out-secret"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.body["Event"] == "delivered"
    assert hit.body["QueueMsgID"] == sub["QueueMsgID"]
    assert hit.body["MessageID"] == res["MessageID"]
    assert hit.body["Subject"] == "hello via api"
    assert hit.body["Recipient"] == "carol@remote.test"
    assert hit.body["Error"] == ""


def test_failed_delivery_outgoing_webhook(setup: Setup) -> None:
    with setup.client() as c:
        r = c.post("Send", json=send_request("nobody@remote.test"))
    assert r.status_code == 200, r.text
    (hit,) = setup.hooks.wait("/out")
    assert hit.body["Event"] == "failed"
    assert hit.body["SMTPCode"] == 550
    assert hit.body["SMTPEnhancedCode"] == "5.1.1"
    assert "no such user" in hit.body["Error"]
    assert setup.remote.handler.received == []


def test_suppression_from_bounce_api_and_submission_refused(setup: Setup) -> None:
    with setup.client() as c:
        r = c.post("Send", json=send_request("nobody@remote.test"))
        assert r.status_code == 200, r.text
        (hit,) = setup.hooks.wait("/out")
        assert hit.body["Event"] == "failed"
        # The hard bounce (550 5.1.1) put the address on alice's list, as mox.
        r = c.post("SuppressionPresent", json={"EmailAddress": "No.Body+x@remote.test"})
        assert r.status_code == 200, r.text
        assert r.json() == {"Present": True}
        r = c.post("SuppressionList", json={})
        (sup,) = r.json()["Suppressions"]
        assert sup["Account"] == "alice"
        assert sup["BaseAddress"] == "nobody@remote.test"
        assert sup["OriginalAddress"] == "nobody@remote.test"
        assert sup["Manual"] is False
        assert "550" in sup["Reason"]
        assert set(sup) == {
            "ID",
            "Created",
            "Account",
            "BaseAddress",
            "OriginalAddress",
            "Manual",
            "Reason",
        }

        # Sending again is refused at once, through the API and through SMTP submission.
        r = c.post("Send", json=send_request("nobody+again@remote.test"))
        assert r.status_code == 400
        assert r.json()["Code"] == "badAddress"
        assert "suppression list" in r.json()["Message"]
        s = smtplib.SMTP("127.0.0.1", setup.ports["submission"], timeout=10)
        with s:
            tls = ssl.create_default_context()
            setup.ca.configure_trust(tls)
            tls.check_hostname = False
            s.starttls(context=tls)
            s.login(*ALICE)
            assert s.mail("alice@example.test")[0] == 250
            code, text = s.rcpt("nobody@remote.test")
            assert code == 550
            assert text.startswith(b"5.1.1 ")
            assert b"suppression list" in text

        with setup.client(BOB) as other:  # lists are per account
            assert other.post("SuppressionList", json={}).json() == {"Suppressions": []}

        r = c.post("SuppressionRemove", json={"EmailAddress": "nobody@remote.test"})
        assert (r.status_code, r.json()) == (200, {})
        r = c.post("SuppressionRemove", json={"EmailAddress": "nobody@remote.test"})
        assert r.status_code == 404
        r = c.post("SuppressionPresent", json={"EmailAddress": "nobody@remote.test"})
        assert r.json() == {"Present": False}

        r = c.post("SuppressionAdd", json={"EmailAddress": "carol@remote.test", "Reason": "asked"})
        assert (r.status_code, r.json()) == (200, {})
        (sup,) = c.post("SuppressionList", json={}).json()["Suppressions"]
        assert (sup["BaseAddress"], sup["Manual"], sup["Reason"]) == (
            "carol@remote.test",
            True,
            "asked",
        )
        r = c.post("SuppressionAdd", json={"EmailAddress": "carol@remote.test"})
        assert (r.status_code, r.json()["Code"]) == (400, "user")
        for bad in ({"EmailAddress": "not an address"}, {"EmailAddress": ""}, {"Other": 1}):
            r = c.post("SuppressionAdd", json=bad)
            assert r.status_code == 400, bad


def test_incoming_webhook_on_smtp_delivery_retried(setup: Setup) -> None:
    setup.hooks.statuses = [500]  # the first POST fails; the retry must come
    msg = (
        b"From: Someone <someone@example.org>\r\nTo: alice@example.test\r\n"
        b"Subject: inbound\r\nMessage-Id: <in1@example.org>\r\n"
        b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n\r\nhi alice\r\n"
    )
    with smtplib.SMTP("127.0.0.1", setup.ports["smtp"], timeout=10) as s:
        assert s.sendmail("someone@example.org", ["alice@example.test"], msg) == {}
    first, second = setup.hooks.wait("/in", 2)
    assert first.body == second.body  # the same event, sent again
    body = second.body
    assert "Authorization" not in second.headers  # none configured for this hook
    assert body["Subject"] == "inbound"
    assert body["MessageID"] == "<in1@example.org>"
    assert body["From"] == [{"Name": "Someone", "Address": "someone@example.org"}]
    assert body["Text"] == "hi alice\n"
    assert body["Meta"]["MailFrom"] == "someone@example.org"
    assert body["Meta"]["RcptTo"] == "alice@example.test"
    assert body["Meta"]["MailboxName"] == "Inbox"
    assert body["Meta"]["UID"] == 1
    assert setup.hooks.wait("/out", 0) == []  # no outgoing event for incoming mail


def test_bad_credentials_401(setup: Setup) -> None:
    for auth in (("alice@example.test", "wrong"), ("nobody@example.test", PASSWORD), None):
        with setup.client(auth) as c:
            r = c.post("Send", json=send_request("bob@other.test"))
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('Basic realm="mox webapi"')
        assert r.json()["Code"] == "unauthorized"
    assert stored(setup.srv, "bob", "Lists/Bob") == []


@pytest.mark.parametrize(
    "message",
    [
        {"Subject": "hi\r\nBcc: carol@remote.test"},
        {"Subject": "hi\nX-Evil: 1"},
        {"From": {"Name": "Alice\r\nBcc: carol@remote.test", "Address": "alice@example.test"}},
        {"To": [{"Name": "x\rBcc: y", "Address": "bob@other.test"}]},
        {"InReplyTo": "<a@b>\r\nBcc: carol@remote.test"},
    ],
)
def test_header_injection_refused(setup: Setup, message: dict[str, Any]) -> None:
    with setup.client() as c:
        r = c.post("Send", json=send_request("bob@other.test", **message))
    assert r.status_code == 400
    assert r.json()["Code"] == "headerInjection"
    assert stored(setup.srv, "bob", "Lists/Bob") == []


def test_header_injection_in_extra_headers(setup: Setup) -> None:
    req = send_request("bob@other.test")
    with setup.client() as c:
        r = c.post("Send", json={**req, "Headers": [["X-Note", "a\r\nBcc: carol@remote.test"]]})
        assert r.status_code == 400
        assert r.json()["Code"] == "headerInjection"
        r = c.post("Send", json={**req, "Headers": [["Bcc", "carol@remote.test"]]})
        assert r.status_code == 400
        r = c.post("Send", json={**req, "Headers": [["X-Note", "fine"]]})
        assert r.status_code == 200, r.text
    (data,) = stored(setup.srv, "bob", "Lists/Bob")
    assert b"X-Note: fine\r\n" in data


def test_bad_input_400(setup: Setup) -> None:
    with setup.client() as c:
        # From must be an address of the account.
        r = c.post(
            "Send",
            json=send_request("bob@other.test", From={"Address": "bob@other.test"}),
        )
        assert r.status_code == 400
        assert "must match authenticated user" in r.json()["Message"]
        r = c.post("Send", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        assert r.json()["Code"] == "badRequest"
        r = c.post("Send", json=send_request("not an address"))
        assert r.status_code == 400
        assert r.json()["Code"] == "badAddress"
        r = c.post("Send", json={"Message": {"From": {"Address": "alice@example.test"}}})
        assert r.status_code == 400  # no recipients
        r = c.post("Send", json={"Message": {}, "Bogus": 1})
        assert r.status_code == 400
        assert "Bogus" in r.json()["Message"]
        r = c.post("NoSuchMethod", json={})
        assert r.status_code == 404
        r = c.post("MessageFlagsAdd", json={"Mailbox": "Inbox", "UID": 1, "Flags": ["bad flag"]})
        assert r.status_code == 400
    assert stored(setup.srv, "bob", "Lists/Bob") == []
    assert setup.remote.handler.received == []


def test_send_non_ascii_round_trip(setup: Setup) -> None:
    with setup.client() as c:
        r = c.post(
            "Send",
            json=send_request(
                "bob@other.test",
                Subject="grüße ✓",
                Text="schöne Grüße\n",
                From={"Name": "Ålice", "Address": "alice@example.test"},
            ),
        )
    assert r.status_code == 200, r.text
    (data,) = stored(setup.srv, "bob", "Lists/Bob")
    assert "grüße".encode() not in data.split(b"\r\n\r\n")[0]  # headers: RFC 2047 encoded
    with setup.client(BOB) as c:
        got = c.post("MessageGet", json={"Mailbox": "Lists/Bob", "UID": 1}).json()
    assert got["Subject"] == "grüße ✓"
    assert got["Text"] == "schöne Grüße\n"
    assert got["From"] == [{"Name": "Ålice", "Address": "alice@example.test"}]
