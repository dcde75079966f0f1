"""The webmail over HTTP (httpx against a real server on loopback): sessions, cookies, CSRF,
throttled logins, and the JSON API end to end (SMTP in, IMAP and the store to check)."""

from __future__ import annotations

import imaplib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverthread import PASSWORD
from tests.smtpserver.raw import stored
from tests.webmail.setup import ALICE, BOB, WebmailServer, login, message, start, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebmailServer]:
    def tweak(data: dict[str, Any]) -> None:
        data.setdefault("limits", {})["auth_failures_per_minute"] = 3

    s = start(tmp_path, tweak)
    yield s
    s.srv.stop()


def test_no_session_and_csrf(server: WebmailServer) -> None:
    with server.http() as c:
        page = c.get("/webmail/")
        assert page.status_code == 200
        assert 'action="/webmail/login"' in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert c.get("/webmail").status_code == 308
        assert c.get("/webmail/api/mailboxes").status_code == 401
        assert c.get("/webmail/msg/1/1/html").status_code == 401
        r = c.post("/webmail/api/flags", json={"mailbox": 1, "uids": [1], "add": ["\\Seen"]})
        assert r.status_code == 401
        # A cross-site login form post is refused before any password check.
        r = c.post(
            "/webmail/login",
            data={"username": ALICE, "password": PASSWORD},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
        assert r.status_code == 403

        r = c.post("/webmail/login", data={"username": ALICE, "password": PASSWORD})
        assert r.status_code == 303
        assert r.headers["location"] == "/webmail/"
        cookie = r.headers["set-cookie"]
        print("set-cookie:", cookie.split(";", 1)[1])
        attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
        assert "httponly" in attrs
        assert "secure" in attrs
        assert attrs["samesite"].lower() == "samesite=strict"
        assert attrs["path"] == "Path=/webmail/"
        csrf = login(c)
        assert c.get("/webmail/api/mailboxes").status_code == 200
        body = {"mailbox": 1, "uids": [1], "add": ["\\Seen"]}
        assert c.post("/webmail/api/flags", json=body).status_code == 403  # no token
        bad = {"x-mox-csrf": "wrong"}
        assert c.post("/webmail/api/flags", json=body, headers=bad).status_code == 403
        other = {"x-mox-csrf": csrf, "origin": "https://evil.example"}
        assert c.post("/webmail/api/flags", json=body, headers=other).status_code == 403
        ok = c.post("/webmail/api/flags", json=body, headers={"x-mox-csrf": csrf})
        assert ok.status_code == 200, ok.text
        # Logout needs the token too, then the session is gone for good.
        assert c.post("/webmail/logout", data={}).status_code == 403
        assert c.post("/webmail/logout", data={"csrf": csrf}).status_code == 303
        assert c.get("/webmail/api/mailboxes").status_code == 401


def test_wrong_password_throttled_with_imap(server: WebmailServer) -> None:
    with server.http() as c:
        for _ in range(3):
            r = c.post("/webmail/login", data={"username": ALICE, "password": "wrong"})
            assert r.status_code == 401
            assert "login failed" in r.text
        # Over the per-IP limit: even the right password is refused, on the web and over IMAP,
        # which shares the limiter.
        r = c.post("/webmail/login", data={"username": ALICE, "password": PASSWORD})
        assert r.status_code == 401
    with pytest.raises(imaplib.IMAP4.error), server.imap():
        pass


def _api(c: Any, csrf: str, path: str, body: dict[str, Any]) -> Any:
    r = c.post(f"/webmail/api/{path}", json=body, headers={"x-mox-csrf": csrf})
    assert r.status_code == 200, r.text
    return r.json()


def test_api_read_search_move_send(server: WebmailServer) -> None:
    msg = message("quarterly report", "the numbers for the zebra project\n")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    server.smtp_deliver(msg)
    server.smtp_deliver(message("lunch", "tomorrow at noon?\n"))
    with server.http() as c:
        csrf = login(c)
        boxes = c.get("/webmail/api/mailboxes").json()
        assert boxes["addresses"] == [ALICE]
        by_name = {m["name"]: m for m in boxes["mailboxes"]}
        inbox = by_name["Inbox"]
        assert (inbox["messages"], inbox["unseen"]) == (2, 2)
        listing = c.get(f"/webmail/api/messages?mailbox={inbox['id']}&limit=1").json()
        assert listing["total"] == 2
        assert len(listing["messages"]) == 1
        assert listing["messages"][0]["subject"] == "lunch"  # newest first
        found = c.get(f"/webmail/api/messages?mailbox={inbox['id']}&q=ZEBRA").json()
        assert [m["subject"] for m in found["messages"]] == ["quarterly report"]
        uid = found["messages"][0]["uid"]
        view = c.get(f"/webmail/api/message?mailbox={inbox['id']}&uid={uid}").json()
        assert "zebra project" in view["text"]
        (att,) = view["attachments"]
        assert att["filename"] == "data.csv"
        dl = c.get(f"/webmail/msg/{inbox['id']}/{uid}/part/{att['part']}")
        assert dl.content == b"a,b\n1,2\n"
        assert dl.headers["content-disposition"].startswith("attachment")
        assert dl.headers["content-type"] == "application/octet-stream"
        bad = c.get(f"/webmail/api/message?mailbox={inbox['id']}&uid=999")
        assert bad.status_code == 404
        assert bad.json()["error"] == "no such message"

        _api(c, csrf, "flags", {"mailbox": inbox["id"], "uids": [uid], "add": ["\\Seen"]})
        boxes = c.get("/webmail/api/mailboxes").json()
        assert {m["name"]: m for m in boxes["mailboxes"]}["Inbox"]["unseen"] == 1

        # Junk: moved to Junk with $Junk; not junk: back to Inbox with $NotJunk.
        res = _api(c, csrf, "junk", {"mailbox": inbox["id"], "uids": [uid], "junk": True})
        assert res["mailbox"] == "Junk"
        junk_uid = res["uids"][0]
        with server.imap() as imap:
            imap.select("Junk")
            typ, data = imap.uid("FETCH", str(junk_uid), "(FLAGS)")
            assert typ == "OK"
            assert b"$junk" in data[0].lower(), data
        res = _api(
            c, csrf, "junk", {"mailbox": by_name["Junk"]["id"], "uids": [junk_uid], "junk": False}
        )
        assert res["mailbox"] == "Inbox"
        new_uid = res["uids"][0]

        # Delete: to Trash; in Trash: gone.
        res = _api(c, csrf, "delete", {"mailbox": inbox["id"], "uids": [new_uid]})
        assert res == {"ok": True, "expunged": False}
        trash = by_name["Trash"]["id"]
        (in_trash,) = c.get(f"/webmail/api/messages?mailbox={trash}").json()["messages"]
        res = _api(c, csrf, "delete", {"mailbox": trash, "uids": [in_trash["uid"]]})
        assert res == {"ok": True, "expunged": True}
        assert c.get(f"/webmail/api/messages?mailbox={trash}").json()["total"] == 0

        # A draft, saved twice (replaced), then sent with an attachment.
        form = {"from": ALICE, "to": BOB, "subject": "from webmail", "text": "draft one\n"}
        r = c.post("/webmail/api/draft", data={**form, "csrf": csrf})
        assert r.status_code == 200, r.text
        draft_uid = r.json()["uid"]
        form["text"] = "hello bob, see attached\n"
        r = c.post("/webmail/api/draft", data={**form, "draft_uid": str(draft_uid), "csrf": csrf})
        assert stored(server.srv, "alice", "Drafts")
        assert len(stored(server.srv, "alice", "Drafts")) == 1
        draft_uid = r.json()["uid"]
        r = c.post(
            "/webmail/api/send",
            data={**form, "draft_uid": str(draft_uid), "csrf": csrf},
            files={"attachment": ("notes.txt", b"attached text\n", "text/plain")},
        )
        assert r.status_code == 200, r.text
        assert stored(server.srv, "alice", "Drafts") == []
        (sent,) = stored(server.srv, "alice", "Sent")
        assert b"Subject: from webmail" in sent
        (got,) = wait_for(lambda: stored(server.srv, "bob", "Lists/Bob"))
        assert b"DKIM-Signature" in got or b"Authentication-Results" in got
        assert b"hello bob, see attached" in got
        assert b'filename="notes.txt"' in got
        # Not ours to send as: the submission path refuses another From.
        r = c.post(
            "/webmail/api/send",
            data={**form, "from": "mallory@example.test", "csrf": csrf},
        )
        assert r.status_code == 400
        assert "5.7.1" in r.json()["error"]
        # Header injection in the subject is refused.
        r = c.post("/webmail/api/send", data={**form, "subject": "x\r\nBcc: a@b.c", "csrf": csrf})
        assert r.status_code == 400
        # Threads: a reply joins its parent (In-Reply-To), the rest stay alone.
        parent = message("thread start", "first\n")
        server.smtp_deliver(parent)
        server.smtp_deliver(message("thread reply", "second\n", In_Reply_To=parent["Message-ID"]))
        threads = c.get(f"/webmail/api/messages?mailbox={inbox['id']}&threads=1").json()
        assert threads["total"] == 2
        rows = [(m["subject"], m["depth"]) for m in threads["messages"]]
        assert rows == [("thread start", 0), ("thread reply", 1), ("lunch", 0)]
        print("api flow:", json.dumps({"sent": len(sent), "received": len(got)}))
