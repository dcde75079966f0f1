"""Black-box tests of the extensions with independent clients: imapclient (CONDSTORE, QRESYNC,
MOVE, UIDPLUS, ESEARCH, SORT, THREAD, IDLE woken by another connection's APPEND) and aioimaplib."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aioimaplib
from imapclient import IMAPClient

from .conftest import PASSWORD, USER, ImapServer


def _msg(n: int, subject: str, extra: str = "", date: int = 1) -> bytes:
    return (
        f"From: Sender {n} <s{n}@example.org>\r\n"
        f"To: mjl@mox.example\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date:02d} Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <m{n}@example.org>\r\n"
        f"{extra}"
        f"\r\n"
        f"body of message {n}\r\n"
    ).encode()


async def test_imapclient_extensions(imap: ImapServer) -> None:
    # Three messages: a thread (1 and its reply 3) and one other (2).
    await imap.account.deliver("Inbox", _msg(1, "lunch", date=3))
    await imap.account.deliver("Inbox", _msg(2, "budget", date=1))
    await imap.account.deliver(
        "Inbox", _msg(3, "Re: lunch", "In-Reply-To: <m1@example.org>\r\n", date=5)
    )
    port = imap.port

    def client() -> dict[str, Any]:
        out: dict[str, Any] = {}
        c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        try:
            c.login(USER, PASSWORD)
            out["caps"] = c.capabilities()
            out["enable"] = c.enable("QRESYNC")
            sel = c.select_folder("INBOX")
            out["highestmodseq"] = sel[b"HIGHESTMODSEQ"]
            out["uidvalidity"] = sel[b"UIDVALIDITY"]
            # CONDSTORE: flag change bumps modseq; CHANGEDSINCE returns only that message.
            out["store"] = c.add_flags([2], [b"\\Flagged"])
            since = out["highestmodseq"]
            out["changed"] = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {since}"])
            out["modseq_search"] = c.search(["MODSEQ", str(out["highestmodseq"] + 1)])
            # SORT and THREAD (RFC 5256).
            out["sort_date"] = c.sort(["DATE"])
            out["sort_subject_rev"] = c.sort(["REVERSE", "SUBJECT"])
            out["thread"] = c.thread("REFERENCES")
            out["thread_subject"] = c.thread("ORDEREDSUBJECT")
            # ESEARCH (RFC 4731) through a raw command.
            typ, _ = c._imap._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
            out["esearch"] = (typ, c._imap.untagged_responses.pop("ESEARCH", None))
            # MOVE (RFC 6851) with COPYUID; UIDPLUS APPENDUID.
            c._imap.untagged_responses.pop("OK", None)
            c.move([2], "Archive")
            out["move"] = c._imap.untagged_responses.pop("OK", None)
            out["append"] = c.append("INBOX", b"Subject: appended\r\n\r\nnew\r\n")
            # Expunge through UID EXPUNGE, then reselect with QRESYNC from the old modseq.
            c.add_flags([1], [b"\\Deleted"])
            out["uid_expunge"] = c.uid_expunge([1])
            c.unselect_folder()
            qresync = f"(QRESYNC ({out['uidvalidity']} {out['highestmodseq']}))"
            typ, _ = c._imap._simple_command("SELECT", "INBOX", qresync)
            out["qresync"] = c._imap.untagged_responses.pop("VANISHED", None)
            out["qresync_fetch"] = c._imap.untagged_responses.pop("FETCH", None)
            out["qresync_ok"] = typ
            c._imap.state = "SELECTED"  # imaplib does not track a raw SELECT
            c.close_folder()
            c.select_folder("Archive")
            out["archive"] = c.fetch([1], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        finally:
            c.logout()
        return out

    out = await asyncio.to_thread(client)
    for cap in (b"CONDSTORE", b"QRESYNC", b"MOVE", b"UIDPLUS", b"ESEARCH", b"SORT"):
        assert cap in out["caps"]
    assert b"THREAD=REFERENCES" in out["caps"]
    assert out["enable"] == [b"QRESYNC"]
    assert out["highestmodseq"] > 1
    changed = out["changed"]
    assert list(changed) == [2]
    assert changed[2][b"MODSEQ"][0] > out["highestmodseq"]
    assert out["modseq_search"] == [2]
    assert out["sort_date"] == [2, 1, 3]  # 1 Jan, 3 Jan, 5 Jan
    assert out["sort_subject_rev"] == [1, 3, 2]  # LUNCH (1, 3 by sequence), BUDGET
    assert out["thread"] == ((2,), (1, 3))
    assert out["thread_subject"] == ((2,), (1, 3))
    typ, data = out["esearch"]
    assert typ == "OK"
    assert data[-1].endswith(b"UID MIN 1 MAX 3 COUNT 3")
    archive = imap.account.get_mailbox("Archive")
    assert archive is not None
    assert out["move"] == [b"[COPYUID %d 2 1] moved" % archive.uidvalidity]
    assert out["append"].startswith(b"[APPENDUID ")
    assert out["append"].endswith(b" 4] APPEND completed")
    assert out["qresync_ok"] == "OK"
    # VANISHED 2 for the MOVE and VANISHED 1 for UID EXPUNGE (RFC 7162 §3.2.10, QRESYNC enabled),
    # then at SELECT with QRESYNC both as expunged since that modseq.
    assert out["qresync"] == [b"2", b"1", b"(EARLIER) 1:2"]
    fetched = b" ".join(out["qresync_fetch"] or [])
    assert b"UID 4" in fetched
    msgs = out["archive"]
    [arch] = list(msgs)
    assert msgs[arch][b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: budget\r\n\r\n"
    # Moved out of Inbox into Archive: $NotJunk, as the Go mox does.
    assert set(msgs[arch][b"FLAGS"]) == {b"\\Flagged", b"$notjunk"}
    assert [m.uid for m in imap.account.list_messages(1)] == [3, 4]


async def test_imapclient_idle_woken_by_other_connection_append(imap: ImapServer) -> None:
    port = imap.port
    idling = threading.Event()

    def idler() -> list[Any]:
        c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        try:
            c.login(USER, PASSWORD)
            c.select_folder("INBOX")
            c.idle()
            idling.set()
            responses: list[Any] = []
            for _ in range(10):
                responses += c.idle_check(timeout=2)
                if (1, b"EXISTS") in responses:
                    break
            c.idle_done()
            return responses
        finally:
            c.logout()

    def appender() -> bytes:
        c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        try:
            c.login(USER, PASSWORD)
            return bytes(c.append("INBOX", b"Subject: wake up\r\n\r\nhello\r\n"))
        finally:
            c.logout()

    task = asyncio.ensure_future(asyncio.to_thread(idler))
    assert await asyncio.to_thread(idling.wait, 10)
    await asyncio.sleep(0.1)
    appended = await asyncio.to_thread(appender)
    responses = await task
    assert appended.startswith(b"[APPENDUID ")
    assert (1, b"EXISTS") in responses


async def test_aioimaplib_session(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", _msg(1, "hello aio"))
    client = aioimaplib.IMAP4(host="127.0.0.1", port=imap.port, timeout=10)
    await client.wait_hello_from_server()
    resp = await client.login(USER, PASSWORD)
    assert resp.result == "OK"
    resp = await client.select("INBOX")
    assert resp.result == "OK"
    assert any(b"EXISTS" in line for line in resp.lines)
    resp = await client.uid("fetch", "1:*", "(UID FLAGS BODY.PEEK[])")
    assert resp.result == "OK"
    assert any(b"hello aio" in line for line in resp.lines if isinstance(line, bytes | bytearray))
    resp = await client.uid_search("TEXT", "aio")
    assert resp.result == "OK"
    assert resp.lines[0] == b"1"
    resp = await client.uid("move", "1", "Trash")
    assert resp.result == "OK"
    idle = await client.idle_start(timeout=5)
    await imap.account.deliver("Inbox", _msg(2, "second"))
    pushed = await asyncio.wait_for(client.wait_server_push(), 5)
    client.idle_done()
    await asyncio.wait_for(idle, 5)
    assert any(b"EXISTS" in line for line in pushed)
    resp = await client.logout()
    assert resp.result == "OK"
