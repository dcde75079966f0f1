"""The account pages over HTTP (httpx): sessions and CSRF, destination and ruleset edits that
the running server applies at once, refused edits, import of archives (also hostile ones),
export, and the login history."""

from __future__ import annotations

import io
import smtplib
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serverthread import PASSWORD
from tests.webadmin.setup import WebServer, csrf_of, start

ALICE = "alice@example.test"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    server = start(tmp_path, admin=False)
    yield server
    server.srv.stop()


def login(client: httpx.Client) -> str:
    resp = client.post("/account/login", data={"username": ALICE, "password": PASSWORD})
    assert resp.status_code == 303, resp.text
    page = client.get("/account/")
    assert page.status_code == 200
    return csrf_of(page.text)


def deliver(web: WebServer, subject: str) -> None:
    data = f"From: someone@example.org\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", web.ports["smtp"], timeout=10) as s:
        assert s.sendmail("someone@example.org", [ALICE], data.encode()) == {}


def wait_import(client: httpx.Client, location: str) -> dict[str, object]:
    for _ in range(100):
        status: dict[str, object] = client.get(location + ".json").json()
        if status["done"]:
            return status
        time.sleep(0.05)
    raise AssertionError("import did not finish")


def test_session_csrf_and_history(web: WebServer) -> None:
    with web.http() as client:
        resp = client.get("/account/")
        assert resp.status_code == 303
        assert resp.headers["location"] == "/account/login"
        bad = client.post("/account/login", data={"username": ALICE, "password": "wrong"})
        assert bad.status_code == 401
        csrf = login(client)
        resp = client.post("/account/fullname", data={"full_name": "Alice A."})
        assert resp.status_code == 403
        resp = client.post("/account/fullname", data={"full_name": "Alice A.", "csrf": csrf})
        assert resp.status_code == 303
        page = client.get("/account/").text
        assert "Full name saved." in page
        assert "Alice A." in page
        assert page.count("failed") >= 1
        assert "webaccount" in page
        # Logging out ends the session.
        assert client.post("/account/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/account/").status_code == 303


def test_destination_and_ruleset_edits_apply_at_once(web: WebServer) -> None:
    with web.http() as client:
        csrf = login(client)
        resp = client.post(
            "/account/destination",
            data={"address": ALICE, "mailbox": "Delivered", "full_name": "Alice", "csrf": csrf},
        )
        assert resp.status_code == 303, resp.text
        assert 'mailbox = "Delivered"' in web.config.read_text()
        deliver(web, "after the edit")
        with web.imap(ALICE, PASSWORD) as imap:
            typ, data = imap.select("Delivered")
            assert typ == "OK"
            assert data[0] == b"1"
        # A ruleset with a bad regular expression is refused; the file stays as it was.
        before = web.config.read_bytes()
        resp = client.post(
            "/account/ruleset/add",
            data={
                "address": ALICE,
                "header": "list-id",
                "value": "([unclosed",
                "mailbox": "L",
                "csrf": csrf,
            },
        )
        assert resp.status_code == 400
        assert "not a valid regular expression" in resp.text
        assert web.config.read_bytes() == before
        resp = client.post(
            "/account/ruleset/add",
            data={
                "address": ALICE,
                "header": "list-id",
                "value": "<dev.lists.example.org>",
                "mailbox": "Lists/Dev",
                "csrf": csrf,
            },
        )
        assert resp.status_code == 303, resp.text
        assert "Lists/Dev" in client.get("/account/").text
        resp = client.post(
            "/account/ruleset/remove", data={"address": ALICE, "index": "0", "csrf": csrf}
        )
        assert resp.status_code == 303
        assert "Lists/Dev" not in web.config.read_text()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


MSG = b"From: a@example.org\nTo: alice@example.test\nSubject: %s\n\nbody\n"


def test_import_archives_and_export(web: WebServer, tmp_path: Path) -> None:
    with web.http() as client:
        csrf = login(client)
        archive = _zip(
            {
                "Archive/2024/cur/1.host:2,S": MSG % b"maildir one",
                "Archive/2024/new/2.host": MSG % b"maildir two",
                "Lists.mbox": b"From x Mon Nov 23 10:00:00 2026\n" + MSG % b"mbox one",
                "../escape.mbox": b"From x Mon Nov 23 10:00:00 2026\n" + MSG % b"evil",
                "/abs/evil.mbox": b"From x Mon Nov 23 10:00:00 2026\n" + MSG % b"evil",
            }
        )
        resp = client.post(
            "/account/import",
            data={"csrf": csrf, "mailbox": "Inbox"},
            files={"file": ("mail.zip", archive, "application/zip")},
        )
        assert resp.status_code == 303, resp.text
        status = wait_import(client, resp.headers["location"])
        assert status["imported"] == 3
        assert status["problems"] == []
        assert not (tmp_path / "escape.mbox").exists()
        assert not list((tmp_path / "data" / "tmp").iterdir())  # work files are gone
        with web.imap(ALICE, PASSWORD) as imap:
            assert imap.select("Archive/2024")[1][0] == b"2"
            assert imap.select("Lists")[1][0] == b"1"
        # Importing the same again skips what is there.
        resp = client.post(
            "/account/import",
            data={"csrf": csrf},
            files={"file": ("mail.zip", archive, "application/zip")},
        )
        status = wait_import(client, resp.headers["location"])
        assert status["imported"] == 0
        assert "3 already there" in str(status["text"])
        # Not an mbox, not an archive: a clear problem, nothing imported.
        resp = client.post(
            "/account/import",
            data={"csrf": csrf},
            files={"file": ("notes.txt", b"hello\n", "text/plain")},
        )
        status = wait_import(client, resp.headers["location"])
        assert "not an mbox file" in str(status["problems"])
        page = client.get(resp.headers["location"])
        assert "not an mbox file" in page.text

        # Export: a zip of mbox files and a tgz of Maildirs.
        resp = client.get("/account/export", params={"format": "mbox", "archive": "zip"})
        assert resp.status_code == 200
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            names = zf.namelist()
            assert "Lists.mbox" in names
            assert "Archive/2024.mbox" in names
            assert b"Subject: mbox one" in zf.read("Lists.mbox")
        resp = client.get(
            "/account/export", params={"format": "maildir", "archive": "tgz", "mailbox": "Lists"}
        )
        assert resp.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(resp.content), mode="r:gz") as tf:
            names = tf.getnames()
            assert any(n.startswith("Lists/cur/") for n in names)
            assert len(names) == 1
        assert not list((tmp_path / "data" / "tmp").iterdir())


def test_password_change_ends_other_sessions(web: WebServer) -> None:
    with web.http() as first, web.http() as second:
        csrf = login(first)
        login(second)
        form = {"current": "wrong-password", "new": "n3w-password", "repeat": "n3w-password"}
        resp = first.post("/account/password", data={**form, "csrf": csrf})
        assert resp.status_code == 400
        assert "current password is not right" in resp.text
        resp = first.post("/account/password", data={**form, "current": PASSWORD, "csrf": csrf})
        assert resp.status_code == 303
        assert second.get("/account/").status_code == 303  # logged out
        page = first.get("/account/")  # this browser got a new session
        assert page.status_code == 200
        assert "Password changed" in page.text
        assert web.imap_login_fails(ALICE, PASSWORD)
        with web.imap(ALICE, "n3w-password") as imap:
            assert imap.select("Inbox")[0] == "OK"


def test_suppression_list_add_show_remove(web: WebServer) -> None:
    assert web.srv.running is not None
    queue = web.srv.running.queue
    assert queue is not None

    def listed() -> list[str]:
        return [s.base_address for s in web.srv.call(queue.suppression_list("alice"))]

    with web.http() as client:
        csrf = login(client)
        page = client.get("/account/").text
        assert "Suppression list" in page
        assert "No suppressed addresses." in page
        # Without the CSRF token, or from another site: refused, nothing added.
        form = {"address": "Carol.X+news@Remote.test", "reason": "asked <to> stop"}
        assert client.post("/account/suppression/add", data=form).status_code == 403
        resp = client.post(
            "/account/suppression/add",
            data={**form, "csrf": csrf},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert resp.status_code == 403
        assert listed() == []

        resp = client.post("/account/suppression/add", data={**form, "csrf": csrf})
        assert resp.status_code == 303, resp.text
        assert listed() == ["carolx@remote.test"]
        page = client.get("/account/").text
        assert "added to the suppression list" in page
        assert "Carol.X+news@Remote.test" in page
        assert "carolx@remote.test" in page
        assert "asked &lt;to&gt; stop" in page  # escaped
        assert 'action="/account/suppression/remove"' in page
        # The same base address again, or no address at all: a problem, nothing changes.
        resp = client.post(
            "/account/suppression/add", data={"address": "carolx@remote.test", "csrf": csrf}
        )
        assert resp.status_code == 400
        assert "already on the suppression list" in resp.text
        resp = client.post("/account/suppression/add", data={"address": "no at", "csrf": csrf})
        assert resp.status_code == 400
        assert "bad address" in resp.text
        assert listed() == ["carolx@remote.test"]

        remove = {"address": "Carol.X+news@Remote.test"}
        assert client.post("/account/suppression/remove", data=remove).status_code == 403
        assert listed() == ["carolx@remote.test"]
        resp = client.post("/account/suppression/remove", data={**remove, "csrf": csrf})
        assert resp.status_code == 303
        assert listed() == []
        page = client.get("/account/").text
        assert "removed from the suppression list" in page
        assert "No suppressed addresses." in page
        resp = client.post("/account/suppression/remove", data={**remove, "csrf": csrf})
        assert resp.status_code == 400
        assert "not on the suppression list" in resp.text
