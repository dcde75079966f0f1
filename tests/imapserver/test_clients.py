"""Black-box tests with independent clients: stdlib imaplib and imapclient."""

from __future__ import annotations

import asyncio
import imaplib
import threading
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient

from .conftest import MESSAGE, PASSWORD, USER, ImapServer

OTHER = b"From: Carol <carol@example.org>\r\nSubject: second\r\n\r\nsecond body\r\n"


async def test_imaplib_session(imap: ImapServer) -> None:
    delivered = await imap.account.deliver("Inbox", MESSAGE)
    await imap.account.deliver("Inbox", OTHER)
    port = imap.port

    def client() -> dict[str, Any]:
        out: dict[str, Any] = {}
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        try:
            out["login"] = c.login(USER, PASSWORD)[0]
            out["list"] = c.list()[1]
            out["select"] = list(c.select("INBOX")[1])  # imaplib returns a live list
            _, data = c.fetch("1", "(RFC822)")
            first = data[0]
            assert isinstance(first, tuple)
            out["rfc822"] = first[1]
            out["flags_after_fetch"] = c.fetch("1", "(FLAGS)")[1]
            out["store"] = c.store("2", "+FLAGS", "(\\Flagged)")[1]
            out["search_flagged"] = c.search(None, "FLAGGED")[1]
            out["search_from"] = c.search(None, "FROM", '"Fred Foobar"')[1]
            out["append"] = c.append("INBOX", "(\\Draft)", None, b"Subject: new\r\n\r\nnew\r\n")[1]
            out["uids"] = c.uid("SEARCH", "ALL")[1]
            c.store("1", "+FLAGS", "(\\Deleted)")
            out["expunge"] = c.expunge()[1]
            out["after"] = c.uid("SEARCH", "ALL")[1]
            out["status"] = c.status("INBOX", "(MESSAGES UNSEEN)")[1]
            out["create"] = c.create("Projects/2024")[0]
            out["list2"] = c.list('""', "Projects/*")[1]
            c.close()
        finally:
            c.logout()
        return out

    out = await asyncio.to_thread(client)
    assert out["login"] == "OK"
    assert b'(\\HasNoChildren) "/" "Inbox"' in out["list"]
    assert out["select"] == [b"2"]
    assert out["rfc822"] == MESSAGE
    assert delivered.size == len(MESSAGE)
    assert out["flags_after_fetch"] == [b"1 (FLAGS (\\Seen))"]
    assert out["store"] == [b"2 (FLAGS (\\Flagged))"]
    assert out["search_flagged"] == [b"2"]
    assert out["search_from"] == [b"1"]
    assert out["append"][0].startswith(b"[APPENDUID ")
    assert out["uids"] == [b"1 2 3"]
    assert out["expunge"] == [b"1"]
    assert out["after"] == [b"2 3"]
    assert out["status"] == [b'"Inbox" (MESSAGES 2 UNSEEN 2)']
    assert out["create"] == "OK"
    assert out["list2"] == [b'(\\HasNoChildren) "/" "Projects/2024"']


async def test_imapclient_session(imap: ImapServer) -> None:
    await imap.account.deliver(
        "Inbox", MESSAGE, internal_date=datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    )
    port = imap.port

    def client() -> dict[str, Any]:
        out: dict[str, Any] = {}
        c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        c.normalise_times = False  # keep the zone of INTERNALDATE
        try:
            c.login(USER, PASSWORD)
            out["caps"] = c.capabilities()
            out["folders"] = c.list_folders()
            sel = c.select_folder("INBOX")
            out["exists"] = sel[b"EXISTS"]
            out["uidvalidity"] = sel[b"UIDVALIDITY"]
            uids = c.search(["ALL"])
            out["uids"] = uids
            out["fetch"] = c.fetch(
                uids,
                ["RFC822", "FLAGS", "ENVELOPE", "BODYSTRUCTURE", "INTERNALDATE", "RFC822.SIZE"],
            )
            out["add_flags"] = c.add_flags(uids, [b"$Important", b"\\Answered"])
            out["unanswered"] = c.search(["UNANSWERED"])
            out["append"] = c.append(
                "Archive", b"Subject: archived\r\n\r\nx\r\n", flags=[b"\\Seen"]
            )
            c.copy(uids, "Archive")
            out["status"] = c.folder_status("Archive", [b"MESSAGES", b"UNSEEN", b"UIDNEXT"])
            c.create_folder("Entwürfe/2024")
            out["folders2"] = [name for _, _, name in c.list_folders("Entw*")]
            c.delete_messages(uids)
            out["expunge"] = c.expunge()
            out["left"] = c.search(["ALL"])
        finally:
            c.logout()
        return out

    out = await asyncio.to_thread(client)
    assert b"IDLE" in out["caps"]
    assert b"UIDPLUS" in out["caps"]
    folders = {name: flags for flags, _, name in out["folders"]}
    assert set(folders) == {"Archive", "Drafts", "Inbox", "Junk", "Sent", "Trash"}
    assert b"\\Sent" in folders["Sent"]
    assert out["exists"] == 1
    mb = imap.account.get_mailbox("Inbox")
    assert mb is not None
    assert out["uidvalidity"] == mb.uidvalidity
    [uid] = out["uids"]
    data = out["fetch"][uid]
    assert data[b"RFC822"] == MESSAGE
    assert data[b"RFC822.SIZE"] == len(MESSAGE)
    assert data[b"FLAGS"] == (b"\\Seen",)
    env = data[b"ENVELOPE"]
    assert env.subject == b"afternoon meeting"
    assert env.from_[0].mailbox == b"foobar"
    assert env.from_[0].host == b"Blurdybloop.example"
    assert env.message_id == b"<B27397-0100000@Blurdybloop.example>"
    assert data[b"BODYSTRUCTURE"][0] == b"TEXT"
    assert data[b"INTERNALDATE"] == datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert set(out["add_flags"][uid]) == {b"\\Seen", b"\\Answered", b"$important"}
    assert out["unanswered"] == []
    assert out["status"][b"MESSAGES"] == 2
    assert out["status"][b"UNSEEN"] == 0
    assert out["folders2"] == ["Entwürfe", "Entwürfe/2024"]
    assert imap.account.get_mailbox("Entwürfe/2024") is not None
    assert out["left"] == []


async def test_imapclient_idle(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    port = imap.port
    idling = threading.Event()

    def client() -> list[Any]:
        c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10)
        try:
            c.login(USER, PASSWORD)
            c.select_folder("INBOX")
            c.idle()
            idling.set()
            responses: list[Any] = []
            for _ in range(10):
                responses += c.idle_check(timeout=2)
                if any(
                    r[1:] == (b"FETCH", (b"UID", 1, b"FLAGS", (b"\\Flagged",))) for r in responses
                ):
                    break
            c.idle_done()
            return responses
        finally:
            c.logout()

    task = asyncio.ensure_future(asyncio.to_thread(client))
    assert await asyncio.to_thread(idling.wait, 10)
    await asyncio.sleep(0.1)
    await imap.account.deliver("Inbox", OTHER)
    await imap.account.store_flags(1, [1], "add", ["\\Flagged"])
    responses = await task
    assert (2, b"EXISTS") in responses
    assert (1, b"FETCH", (b"UID", 1, b"FLAGS", (b"\\Flagged",))) in responses
