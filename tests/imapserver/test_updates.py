"""Changes by other sessions reach a session: at NOOP, after commands, pushed during IDLE."""

from __future__ import annotations

from .conftest import MESSAGE, ImapServer


async def test_updates_at_noop(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    a = await imap.transcript(login=True)
    b = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    await b.transact("b1 SELECT Inbox")
    await imap.account.deliver("Inbox", MESSAGE)
    assert await a.transact("a2 NOOP") == [b"* 2 EXISTS"]
    assert await b.transact("b2 STORE 1 +FLAGS.SILENT (\\Seen)") == [b"* 2 EXISTS"]
    assert await a.transact("a3 NOOP") == [b"* 1 FETCH (UID 1 FLAGS (\\Seen))"]
    assert await a.transact("a4 NOOP") == []  # reported once
    await b.transact("b3 STORE 2 +FLAGS.SILENT (\\Deleted)")
    await b.transact("b4 EXPUNGE")
    # No EXPUNGE during FETCH (RFC 9051 §7.5.1); the expunged message is left out, not renumbered.
    assert await a.transact("a5 FETCH 1:2 (UID)") == [b"* 1 FETCH (UID 1)"]
    assert await a.transact("a6 NOOP") == [b"* 2 EXPUNGE"]
    assert await a.transact("a7 UID SEARCH ALL") == [b"* SEARCH 1"]


async def test_expunge_held_back_during_fetch(imap: ImapServer) -> None:
    for _ in range(2):
        await imap.account.deliver("Inbox", MESSAGE)
    a = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    await imap.account.store_flags(1, [1], "add", ["\\Deleted"])
    await imap.account.expunge(1)
    lines = await a.transact("a2 FETCH 1:2 UID")
    assert b"* 1 EXPUNGE" not in lines
    assert b"* 2 FETCH (UID 2)" in lines
    assert await a.transact("a3 NOOP") == [b"* 1 EXPUNGE"]
    assert await a.transact("a4 FETCH 1 UID") == [b"* 1 FETCH (UID 2)"]


async def test_new_message_and_expunge_in_one_flush(imap: ImapServer) -> None:
    a = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    msg = await imap.account.deliver("Inbox", MESSAGE, flags=["\\Deleted"])
    await imap.account.deliver("Inbox", MESSAGE, flags=["$new"])
    await imap.account.expunge(1, [msg.uid])
    # The expunged message was never announced, so only the other one shows up.
    assert await a.transact("a2 NOOP") == [
        b"* 1 EXISTS",
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $new)",
    ]
    assert await a.transact("a3 FETCH 1 UID") == [b"* 1 FETCH (UID 2)"]


async def test_idle_pushes_changes(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    a = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    await a.send(b"a2 IDLE\r\n")
    assert await a.read_response() == b"+ idling"
    await imap.account.deliver("Inbox", MESSAGE)
    assert await a.read_response() == b"* 2 EXISTS"
    await imap.account.store_flags(1, [1], "add", ["\\Flagged"])
    assert await a.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged))"
    await imap.account.store_flags(1, [1], "add", ["\\Deleted"])
    assert await a.read_response() == b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted))"
    await imap.account.expunge(1)
    assert await a.read_response() == b"* 1 EXPUNGE"
    await a.send(b"DONE\r\n")
    assert await a.until_tagged(b"a2") == []
    await a.transact("a3 NOOP")


async def test_idle_when_not_selected_and_bad_done(imap: ImapServer) -> None:
    a = await imap.transcript(login=True)
    await a.send(b"a1 IDLE\r\n")
    assert await a.read_response() == b"+ idling"
    await imap.account.deliver("Inbox", MESSAGE)  # not selected: nothing to report
    await a.send(b"done\r\n")
    assert await a.until_tagged(b"a1") == []
    await a.send(b"a2 IDLE\r\n")
    assert await a.read_response() == b"+ idling"
    await a.send(b"a3 NOOP\r\n")
    await a.until_tagged(b"a2", "BAD")  # RFC 2177: only DONE ends IDLE
    await a.transact("a4 NOOP")


async def test_idle_client_disconnects(imap: ImapServer) -> None:
    a = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    await a.send(b"a2 IDLE\r\n")
    assert await a.read_response() == b"+ idling"
    await a.close()
    # Deliveries after the session is gone must not fail (listener removed).
    await imap.account.deliver("Inbox", MESSAGE)
    b = await imap.transcript(login=True)
    await b.transact("b1 STATUS Inbox (MESSAGES)")
