"""stop_imap_server: idle sessions get BYE at once, an APPEND whose literal is arriving is finished
and answered before the session ends, and the wait for it is bounded."""

from __future__ import annotations

import asyncio

from mox.imapserver import stop_imap_server
from tests.imapserver.conftest import MESSAGE, ImapServer

BIG = MESSAGE + b"x" * 2_000_000 + b"\r\n"


async def test_stop_finishes_append_in_progress(imap: ImapServer) -> None:
    idle = await imap.transcript(login=True)
    await idle.transact("s1 SELECT INBOX")
    await idle.send(b"i1 IDLE\r\n")
    assert (await idle.read_response()).startswith(b"+ ")
    waiting = await imap.transcript(login=True)
    appender = await imap.transcript(login=True)
    await appender.send(b"a1 APPEND INBOX {%d}\r\n" % len(BIG))
    assert (await appender.read_response()).startswith(b"+ ")
    half = len(BIG) // 2
    await appender.send(BIG[:half])
    await asyncio.sleep(0.1)

    stopping = asyncio.create_task(stop_imap_server(imap.server, grace=10))
    # Sessions not in the middle of a command say BYE at once (RFC 9051 §7.1.5).
    assert b"* BYE" in await asyncio.wait_for(idle.read_until_closed(), 3)
    assert b"* BYE" in await asyncio.wait_for(waiting.read_until_closed(), 3)
    assert not stopping.done()

    await appender.send(BIG[half:] + b"\r\n")
    await appender.until_tagged(b"a1", "OK")
    assert b"APPENDUID" in appender.last
    assert b"* BYE" in await appender.read_until_closed()
    assert await asyncio.wait_for(stopping, 5) is True

    inbox = imap.account.get_mailbox("Inbox")
    assert inbox is not None
    (msg,) = imap.account.list_messages(inbox.id)
    assert imap.account.read_message(msg) == BIG


async def test_stop_is_bounded_when_the_literal_never_comes(imap: ImapServer) -> None:
    appender = await imap.transcript(login=True)
    await appender.send(b"a1 APPEND INBOX {%d}\r\n" % len(BIG))
    assert (await appender.read_response()).startswith(b"+ ")
    await appender.send(BIG[:1000])
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await stop_imap_server(imap.server, grace=0.3) is False  # cut off after the grace
    assert loop.time() - t0 < 3
    await appender.read_until_closed()
    inbox = imap.account.get_mailbox("Inbox")
    assert inbox is not None
    assert imap.account.list_messages(inbox.id) == []


async def test_stop_after_pipelined_command_says_bye(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("n1 NOOP")
    await stop_imap_server(imap.server, grace=5)
    out = await tc.read_until_closed()
    assert out.startswith(b"* BYE")
