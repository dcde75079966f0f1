"""The web API and webhooks against a real server: HTTPS listener on loopback, httpx as client,
a loopback remote MTA (aiosmtpd) for other domains, and a loopback webhook receiver."""

from __future__ import annotations

import email.policy
import html
import imaplib
import json
import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
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


# --- message methods: raw and part get, move, delete (checked over IMAP) ---

PDF = b"%PDF-1.4\n\x00\x01\x02\xff binary attachment \xfe\n"


def deliver_to_alice(setup: Setup, subject: str, attachment: bool = False) -> None:
    msg = EmailMessage()
    msg["From"] = "Someone <someone@example.org>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = subject
    msg["Message-Id"] = f"<{subject.replace(' ', '.')}@example.org>"
    msg.set_content("schöne Grüße\n")
    if attachment:
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="doc.pdf")
    data = msg.as_bytes(policy=email.policy.SMTP)
    with smtplib.SMTP("127.0.0.1", setup.ports["smtp"], timeout=10) as s:
        assert s.sendmail("someone@example.org", ["alice@example.test"], data) == {}


@contextmanager
def imap(setup: Setup, user: str = ALICE[0]) -> Iterator[imaplib.IMAP4_SSL]:
    ctx = ssl.create_default_context()
    setup.ca.configure_trust(ctx)
    client = imaplib.IMAP4_SSL("127.0.0.1", setup.ports["imaps"], ssl_context=ctx, timeout=10)
    client.login(user, PASSWORD)
    try:
        yield client
    finally:
        client.logout()


def imap_expunged(client: imaplib.IMAP4_SSL) -> list[bytes]:
    """Untagged EXPUNGE responses the selected session gets (RFC 9051 §7.5.1), by NOOP."""
    for _ in range(100):
        assert client.noop()[0] == "OK"
        _, found = client.response("EXPUNGE")
        if found and found[0] is not None:
            return [f for f in found if isinstance(f, bytes)]
        time.sleep(0.05)
    return []


def test_raw_and_part_get(setup: Setup) -> None:
    deliver_to_alice(setup, "with attachment", attachment=True)
    ref = {"Mailbox": "Inbox", "UID": 1}
    with imap(setup) as c:
        assert c.select("Inbox", readonly=True)[0] == "OK"
        typ, data = c.uid("FETCH", "1", "(BODY.PEEK[])")
        assert typ == "OK"
        first = data[0]
        assert isinstance(first, tuple)
        imap_raw = first[1]
    with setup.client() as c:
        r = c.post("MessageRawGet", json=ref)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "message/rfc822"
        assert r.content == imap_raw
        assert b"Subject: with attachment\r\n" in r.content

        got = c.post("MessageGet", json=ref).json()
        structure = got["Structure"]
        assert structure["ContentType"] == "multipart/mixed"
        assert [p["ContentType"] for p in structure["Parts"]] == ["text/plain", "application/pdf"]
        assert structure["Parts"][1]["DecodedSize"] == len(PDF)

        r = c.post("MessagePartGet", json={**ref, "PartPath": [1]})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.content == PDF  # base64 undone (RFC 2045 §6.8)
        r = c.post("MessagePartGet", json={**ref, "PartPath": [0]})
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.content.decode("utf-8") == "schöne Grüße\r\n"  # decoded, still CRLF
        # Errors: a multipart itself, indexes that are not there, malformed paths.
        r = c.post("MessagePartGet", json={**ref, "PartPath": []})
        assert (r.status_code, r.json()["Code"]) == (400, "badRequest")
        for path in ([2], [0, 0], [1, 5]):
            r = c.post("MessagePartGet", json={**ref, "PartPath": path})
            assert (r.status_code, r.json()["Code"]) == (404, "partNotFound"), path
        for bad_path in ("1", [-1], [True], [1.5]):
            r = c.post("MessagePartGet", json={**ref, "PartPath": bad_path})
            assert r.status_code == 400, bad_path

        for method in ("MessageRawGet", "MessagePartGet", "MessageDelete"):
            r = c.post(method, json={"Mailbox": "Inbox", "UID": 99})
            assert (r.status_code, r.json()["Code"]) == (404, "notFound"), method
            r = c.post(method, json={"Mailbox": "Nope", "UID": 1})
            assert r.status_code == 404, method
    # The account comes from the credentials: Bob has no such message.
    with setup.client(BOB) as c:
        assert c.post("MessageRawGet", json=ref).status_code == 404


def test_move_and_delete_seen_over_imap(setup: Setup) -> None:
    deliver_to_alice(setup, "first")
    deliver_to_alice(setup, "second")
    with imap(setup) as watcher, setup.client() as c:
        assert watcher.select("Inbox")[1] == [b"2"]
        r = c.post("MessageMove", json={"Mailbox": "Inbox", "UID": 1, "DestMailboxName": "Junk"})
        assert r.status_code == 200, r.text
        assert r.json() == {"Mailbox": "Junk", "UID": 1}
        # Another IMAP session on Inbox sees the message go (RFC 6851 §4.4).
        assert imap_expunged(watcher) == [b"1"]
        with imap(setup) as other:
            assert other.select("Junk", readonly=True)[1] == [b"1"]
            typ, data = other.uid("FETCH", "1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK"
            text = b" ".join(p if isinstance(p, bytes) else b" ".join(p) for p in data if p)
            assert b"Subject: first" in text
            # The junk flag an IMAP MOVE into Junk sets, from which the junk filter learns.
            assert b"$junk" in text.lower()
        got = c.post("MessageGet", json={"Mailbox": "Junk", "UID": 1}).json()
        assert "$junk" in [f.lower() for f in got["Flags"]]
        assert c.post("MessageGet", json={"Mailbox": "Inbox", "UID": 1}).status_code == 404

        # Moving what is gone, to a mailbox that does not exist, or to where it is: refused.
        r = c.post("MessageMove", json={"Mailbox": "Inbox", "UID": 1, "DestMailboxName": "Junk"})
        assert r.status_code == 404
        r = c.post("MessageMove", json={"Mailbox": "Inbox", "UID": 2, "DestMailboxName": "Nope"})
        assert r.status_code == 404
        r = c.post("MessageMove", json={"Mailbox": "Inbox", "UID": 2, "DestMailboxName": "Inbox"})
        assert (r.status_code, r.json()["Code"]) == (400, "user")

        r = c.post("MessageDelete", json={"Mailbox": "Inbox", "UID": 2})
        assert (r.status_code, r.json()) == (200, {})
        assert imap_expunged(watcher) == [b"1"]  # the second message was number 1 by now
        assert c.post("MessageDelete", json={"Mailbox": "Inbox", "UID": 2}).status_code == 404
    with imap(setup) as fresh:
        assert fresh.select("Inbox", readonly=True)[1] == [b"0"]
    assert stored(setup.srv, "alice", "Inbox") == []
    assert len(stored(setup.srv, "alice", "Junk")) == 1


def test_message_methods_bad_input_400(setup: Setup) -> None:
    deliver_to_alice(setup, "x")
    with setup.client() as c:
        for method, req in [
            ("MessageRawGet", {"Mailbox": "Inbox"}),
            ("MessageRawGet", {"Mailbox": "Inbox", "UID": "1"}),
            ("MessageRawGet", {"Mailbox": "Inbox", "UID": 0}),
            ("MessageRawGet", {"Mailbox": "Inbox", "UID": 1, "MsgID": 1}),
            ("MessageDelete", {"Mailbox": "", "UID": 1}),
            ("MessageMove", {"Mailbox": "Inbox", "UID": 1}),
            ("MessageMove", {"Mailbox": "Inbox", "UID": 1, "DestMailboxName": 3}),
            ("MessagePartGet", {"Mailbox": "Inbox", "UID": 1, "PartPath": [0] * 51}),
        ]:
            r = c.post(method, json=req)
            assert r.status_code == 400, (method, req, r.text)
            assert set(r.json()) == {"Code", "Message"}
    assert len(stored(setup.srv, "alice", "Inbox")) == 1


def test_form_pages_with_csp_and_cross_site_refused(setup: Setup) -> None:
    with setup.client() as c:
        r = c.get("")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        for method in ("Send", "MessageRawGet", "MessagePartGet", "MessageDelete", "MessageMove"):
            assert f'href="{method}"' in r.text
        r = c.get("MessageMove")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "form-action 'self'" in csp
        assert "script-src" not in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert '<form method="post" action="MessageMove">' in r.text
        assert 'name="request"' in r.text
        assert "DestMailboxName" in r.text
        assert c.get("NoSuchMethod").status_code == 404

        # Every example request uses field names the method accepts.
        for method in ("SuppressionAdd", "SuppressionPresent", "MessageGet", "MessageMove"):
            page = c.get(method).text
            start = page.index('name="request"')
            start = page.index(">", start) + 1
            example = html.unescape(page[start : page.index("</textarea>", start)])
            r = c.post(method, data={"request": example})
            assert r.status_code in (200, 404), (method, r.text)

        # The form posts from our page are fine; another site's are refused.
        ours = f"https://127.0.0.1:{setup.ports['https']}"
        req = json.dumps({"EmailAddress": "x@remote.test"})
        r = c.post(
            "SuppressionAdd",
            data={"request": req},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert (r.status_code, r.json()["Code"]) == (403, "crossSite")
        r = c.post("SuppressionPresent", data={"request": req}, headers={"Origin": ours})
        assert r.json() == {"Present": False}
        r = c.post("SuppressionAdd", data={"request": req}, headers={"Origin": ours})
        assert r.status_code == 200
    with setup.client(None) as anon:
        r = anon.get("MessageMove")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Basic ")
        assert anon.get("").status_code == 401
