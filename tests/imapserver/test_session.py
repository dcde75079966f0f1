"""Session-level transcripts: greeting, capabilities, login, states, bad input, literals, limits."""

from __future__ import annotations

import asyncio
import base64

import pytest

from mox.imapserver import common

from .conftest import PASSWORD, USER, ImapServer, StartServer

# Reference §1.5 (the Go mox's list and order) plus SORT, THREAD and COMPRESS; no -PLUS
# mechanisms without TLS; APPENDLIMIT is the server's real literal limit.
BASE_CAPS = (
    b"IMAP4rev2 IMAP4rev1 ENABLE LITERAL+ IDLE SASL-IR BINARY UNSELECT UIDPLUS ESEARCH SEARCHRES "
    b"MOVE UTF8=ACCEPT LIST-EXTENDED SPECIAL-USE CREATE-SPECIAL-USE LIST-STATUS "
    b"AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-1 AUTH=CRAM-MD5 ID APPENDLIMIT=104857600 CONDSTORE "
    b"QRESYNC STATUS=SIZE QUOTA QUOTA=RES-STORAGE METADATA SAVEDATE WITHIN NAMESPACE "
    b"LIST-METADATA MULTIAPPEND REPLACE PREVIEW INPROGRESS MULTISEARCH NOTIFY UIDONLY SORT "
    b"THREAD=REFERENCES THREAD=ORDEREDSUBJECT COMPRESS=DEFLATE"
)


async def test_greeting_and_capability(imap: ImapServer) -> None:
    tc = await imap.transcript()
    assert tc.greeting == b"* OK [CAPABILITY " + BASE_CAPS + b" AUTH=PLAIN] mox imap"
    assert await tc.transact("a1 CAPABILITY") == [b"* CAPABILITY " + BASE_CAPS + b" AUTH=PLAIN"]
    await tc.transact("a2 NOOP")
    assert await tc.transact('a3 ID ("name" "test")') == [b'* ID ("name" "mox")']
    assert await tc.transact("a4 LOGOUT") == [b"* BYE logging out"]
    assert await tc.read_until_closed() == b""


async def test_login_ok_and_failed(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.transact(f"a1 LOGIN {USER} wrong", "NO")
    assert tc.last == b"a1 NO [AUTHENTICATIONFAILED] invalid credentials"
    await tc.transact("a2 SELECT Inbox", "BAD")  # still not authenticated
    await tc.transact(f'a3 LOGIN "{USER}" "{PASSWORD}"')
    assert tc.last.startswith(b"a3 OK [CAPABILITY IMAP4rev2 ")
    await tc.transact(f"a4 LOGIN {USER} {PASSWORD}", "BAD")  # RFC 9051 §6.2: not again
    assert imap.authenticator.calls[-1] == (USER, "imap")


async def test_login_with_literals(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"a1 LOGIN {%d}\r\n" % len(USER))
    assert await tc.read_response() == b"+ Ready for literal data"
    await tc.send(USER.encode() + b" {%d+}\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
    await tc.until_tagged(b"a1")


async def test_too_many_failed_logins_bye(imap: ImapServer) -> None:
    tc = await imap.transcript()
    for i in range(common.MAX_FAILED_LOGINS - 1):
        await tc.transact(f"a{i} LOGIN {USER} wrong", "NO")
    await tc.send(f"b LOGIN {USER} wrong\r\n".encode())
    assert await tc.read_response() == b"* BYE too many failed logins"
    assert await tc.read_until_closed() == b""


async def test_authenticate_plain_initial_response(imap: ImapServer) -> None:
    tc = await imap.transcript()
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    await tc.transact(f"a1 AUTHENTICATE PLAIN {ir}")
    await tc.transact("a2 SELECT INBOX")


async def test_authenticate_plain_with_continuation(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert await tc.read_response() == b"+ "
    await tc.send(base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()) + b"\r\n")
    await tc.until_tagged(b"a1")


async def test_authenticate_cancel_and_bad_input(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert await tc.read_response() == b"+ "
    await tc.send(b"*\r\n")
    await tc.until_tagged(b"a1", "BAD")  # RFC 9051 §6.2.2
    await tc.transact("a2 AUTHENTICATE PLAIN !!!", "BAD")
    wrong = base64.b64encode(f"\0{USER}\0nope".encode()).decode()
    await tc.transact(f"a3 AUTHENTICATE PLAIN {wrong}", "NO")
    other = base64.b64encode(f"someone\0{USER}\0{PASSWORD}".encode()).decode()
    await tc.transact(f"a4 AUTHENTICATE PLAIN {other}", "NO")  # authzid must be empty or self
    await tc.transact("a5 AUTHENTICATE DIGEST-MD5", "NO")
    await tc.transact("a6 CAPABILITY")  # still usable


async def test_bad_input_keeps_connection_usable(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"\r\n")
    assert (await tc.read_response()).startswith(b"* BAD ")
    await tc.send(b"+ junk\r\n")
    assert (await tc.read_response()).startswith(b"* BAD ")
    await tc.transact("a1 FROBNICATE", "BAD")
    assert tc.last == b"a1 BAD unknown command FROBNICATE"
    await tc.transact("a2 NOOP extra", "BAD")
    await tc.transact("a3 FETCH 1 FLAGS", "BAD")  # not in this state
    await tc.transact("a4 NOOP")


async def test_too_many_bad_commands_bye(imap: ImapServer) -> None:
    tc = await imap.transcript()
    for i in range(19):
        await tc.transact(f"x{i} BOGUS", "BAD")
    await tc.send(b"x19 BOGUS\r\n")
    assert (await tc.read_response()).startswith(b"x19 BAD")
    assert await tc.read_response() == b"* BYE too many errors"
    assert await tc.read_until_closed() == b""


async def test_line_too_long_is_bad_then_usable(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"a1 NOOP " + b"x" * (70 * 1024) + b"\r\n")
    resp = await tc.read_response()
    assert resp.startswith(b"a1 BAD [TOOBIG]")
    await tc.transact("a2 NOOP")


async def test_append_literal_over_limit(start_server: StartServer) -> None:
    imap = await start_server(max_literal=1000)
    tc = await imap.transcript(login=True)
    # Synchronising: refused before the client sends the octets (RFC 9051 §4.3, RFC 7889 TOOBIG).
    await tc.send(b"a1 APPEND Inbox {5000}\r\n")
    assert await tc.read_response() == b"a1 NO [TOOBIG] literal too large"
    # Non-synchronising: read and thrown away, then the next command works (RFC 7888 §4).
    await tc.send(b"a2 APPEND Inbox {2000+}\r\n" + b"y" * 2000 + b"\r\n")
    assert await tc.read_response() == b"a2 NO [TOOBIG] literal too large"
    await tc.transact("a3 NOOP")
    assert imap.account.list_messages(imap.account.get_mailbox("Inbox").id) == []  # type: ignore[union-attr]


async def test_large_literal_refused_before_login(start_server: StartServer) -> None:
    # Before authentication, APPEND-sized literals are not accepted at all.
    imap = await start_server()
    tc = await imap.transcript()
    await tc.send(b"a1 APPEND Inbox {100000}\r\n")
    assert await tc.read_response() == b"a1 NO [TOOBIG] literal too large"


async def test_enable_and_namespace(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.transact("a0 ENABLE IMAP4rev2", "BAD")  # authenticated state only
    await tc.transact(f"a1 LOGIN {USER} {PASSWORD}")
    assert await tc.transact("a2 ENABLE IMAP4rev2 UTF8=ACCEPT X-FOO") == [
        b"* ENABLED IMAP4rev2 UTF8=ACCEPT"
    ]
    assert await tc.transact("a3 ENABLE IMAP4rev2") == [b"* ENABLED"]
    assert await tc.transact("a4 NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL NIL']
    await tc.transact("a5 SELECT Inbox")
    await tc.transact("a6 ENABLE IMAP4rev2", "BAD")  # not in selected state (RFC 9051 §6.3.1)


async def test_unauthenticated_idle_timeout(
    imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "TIMEOUT_UNAUTHENTICATED", 0.3)
    tc = await imap.transcript()
    data = await tc.read_until_closed()
    assert data.startswith(b"* BYE autologout")


async def test_authenticated_idle_timeout(
    imap: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "TIMEOUT_AUTHENTICATED", 0.3)
    monkeypatch.setattr(common, "TIMEOUT_UNAUTHENTICATED", 30.0)
    tc = await imap.transcript(login=True)
    data = await tc.read_until_closed()
    assert data.startswith(b"* BYE autologout")


async def test_pipelined_commands_answered_in_order(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.send(b"p1 NOOP\r\np2 SELECT Inbox\r\np3 UID SEARCH ALL\r\np4 LOGOUT\r\n")
    data = await tc.read_until_closed()
    tags = [line.split(b" ")[0] for line in data.split(b"\r\n") if line[:1] == b"p"]
    assert tags == [b"p1", b"p2", b"p3", b"p4"]


async def test_client_disconnect_mid_command(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.send(b"a1 APPEND Inbox {100}\r\n")
    assert await tc.read_response() == b"+ Ready for literal data"
    await tc.send(b"partial")
    await tc.close()
    await asyncio.sleep(0.05)
    # The server is still fine for others.
    tc2 = await imap.transcript(login=True)
    await tc2.transact("b1 NOOP")
