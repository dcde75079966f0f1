"""Transcripts for the session and mailbox extensions: SCRAM/CRAM-MD5 AUTHENTICATE, throttling and
connection limits, COMPRESS=DEFLATE, NOTIFY, METADATA and LIST-METADATA, QUOTA, UTF8=ACCEPT,
CREATE-SPECIAL-USE, STATUS items, literal limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
import zlib

import scramp

from mox.ratelimit import ConnectionLimiter

from .conftest import MESSAGE, PASSWORD, USER, ImapServer, StartServer, Transcript


async def _scram(tc: Transcript, mech: str, cb: tuple[str, bytes] | None = None) -> bytes:
    client = scramp.ScramClient([mech], USER, PASSWORD, channel_binding=cb)
    first = base64.b64encode(client.get_client_first().encode()).decode()
    await tc.send(f"a1 AUTHENTICATE {mech} {first}\r\n".encode())
    challenge = await tc.read_response()
    assert challenge.startswith(b"+ ")
    client.set_server_first(base64.b64decode(challenge[2:]).decode())
    await tc.send(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
    final = await tc.read_response()
    assert final.startswith(b"+ ")
    client.set_server_final(base64.b64decode(final[2:]).decode())  # verifies the server
    await tc.send(b"\r\n")
    return await tc.read_response()


async def test_authenticate_scram_sha256_and_sha1(imap: ImapServer) -> None:
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        tc = await imap.transcript()
        tagged = await _scram(tc, mech)
        assert tagged.startswith(b"a1 OK [CAPABILITY IMAP4rev2 ")
        await tc.transact("a2 SELECT Inbox")
    assert imap.authenticator.concluded == [(USER, True), (USER, True)]


async def test_authenticate_scram_plus_tls_unique(start_server: StartServer) -> None:
    imap = await start_server(tls="implicit")
    assert imap.client_ssl is not None
    # tls-unique needs TLS 1.2 (the client has no tls-exporter; over TLS 1.3 the server would
    # bind to tls-exporter, RFC 9266).
    ctx12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx12.check_hostname = False
    ctx12.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", imap.port, ssl=ctx12, server_hostname="127.0.0.1"
    )
    tc = Transcript(reader, writer)
    imap.transcripts.append(tc)
    greeting = await tc.read_response()
    assert b"AUTH=SCRAM-SHA-256-PLUS" in greeting
    sslobj = writer.get_extra_info("ssl_object")
    unique = sslobj.get_channel_binding("tls-unique")
    tagged = await _scram(tc, "SCRAM-SHA-256-PLUS", ("tls-unique", unique))
    assert tagged.startswith(b"a1 OK ")
    # A wrong binding fails: the proof covers the channel binding data (RFC 5802 §6).
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", imap.port, ssl=ctx12, server_hostname="127.0.0.1"
    )
    tc2 = Transcript(reader, writer)
    imap.transcripts.append(tc2)
    await tc2.read_response()
    client = scramp.ScramClient(
        ["SCRAM-SHA-256-PLUS"], USER, PASSWORD, channel_binding=("tls-unique", b"x" * 12)
    )
    first = base64.b64encode(client.get_client_first().encode()).decode()
    await tc2.send(f"b1 AUTHENTICATE SCRAM-SHA-256-PLUS {first}\r\n".encode())
    challenge = await tc2.read_response()
    client.set_server_first(base64.b64decode(challenge[2:]).decode())
    await tc2.send(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
    await tc2.until_tagged(b"b1", "NO")
    assert imap.authenticator.concluded[-1][1] is False  # counted as a failed login


async def test_authenticate_cram_md5_and_failure_accounting(imap: ImapServer) -> None:
    tc = await imap.transcript()
    await tc.send(b"a1 AUTHENTICATE CRAM-MD5\r\n")
    challenge = base64.b64decode((await tc.read_response())[2:])
    digest = hmac.new(PASSWORD.encode(), challenge, hashlib.md5).hexdigest()
    await tc.send(base64.b64encode(f"{USER} {digest}".encode()) + b"\r\n")
    await tc.until_tagged(b"a1")
    tc2 = await imap.transcript()
    await tc2.send(b"b1 AUTHENTICATE CRAM-MD5\r\n")
    await tc2.read_response()
    await tc2.send(base64.b64encode(f"{USER} {'0' * 32}".encode()) + b"\r\n")
    await tc2.until_tagged(b"b1", "NO")
    assert tc2.last == b"b1 NO [AUTHENTICATIONFAILED] invalid credentials"
    assert imap.authenticator.concluded == [(USER, True), (USER, False)]


async def test_throttled_ip_and_connection_limit(start_server: StartServer) -> None:
    imap = await start_server(limiter=ConnectionLimiter(concurrent=(2, 10, 10)))
    a = await imap.transcript()
    b = await imap.transcript()
    assert a.greeting.startswith(b"* OK ")
    assert b.greeting.startswith(b"* OK ")
    c = await imap.transcript()
    assert c.greeting == b"* BYE too many connections from your network, try later"
    assert await c.read_until_closed() == b""
    await a.transact("a1 LOGOUT")
    await a.read_until_closed()
    await asyncio.sleep(0.05)  # the server notices the close and frees the slot
    d = await imap.transcript()
    assert d.greeting.startswith(b"* OK ")
    # An IP over the failed-login limit (Authenticator.throttled) is turned away at connect.
    imap.authenticator.throttled_ips.add("127.0.0.1")
    await d.transact(f"d1 LOGIN {USER} {PASSWORD}", "NO")
    assert d.last == b"d1 NO [UNAVAILABLE] too many authentication failures, try later"
    await b.transact("b1 LOGOUT")
    await b.read_until_closed()
    await asyncio.sleep(0.05)
    e = await imap.transcript()
    assert e.greeting == b"* BYE too many authentication failures, try later"
    assert imap.authenticator.calls == []


class _Deflate:
    """The client side of RFC 4978 over a Transcript's streams."""

    def __init__(self, tc: Transcript) -> None:
        self.tc = tc
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inp = zlib.decompressobj(-15)
        self.buf = b""

    async def send(self, line: bytes) -> None:
        data = self.out.compress(line + b"\r\n") + self.out.flush(zlib.Z_SYNC_FLUSH)
        self.tc.writer.write(data)
        await self.tc.writer.drain()

    async def until_tagged(self, tag: bytes) -> list[bytes]:
        lines: list[bytes] = []
        for _ in range(100):
            while b"\r\n" not in self.buf:
                chunk = await asyncio.wait_for(self.tc.reader.read(65536), 10)
                assert chunk, "connection closed"
                self.buf += self.inp.decompress(chunk)
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines
        raise AssertionError(lines)


async def test_compress_deflate(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 COMPRESS LZ4", "BAD")
    await tc.transact("a2 COMPRESS DEFLATE")  # RFC 4978 §3: the OK is not compressed
    z = _Deflate(tc)
    await z.send(b"a3 SELECT Inbox")
    lines = await z.until_tagged(b"a3")
    assert lines[0] == b"* 1 EXISTS"
    await z.send(b"a4 FETCH 1 BODY.PEEK[]")
    lines = await z.until_tagged(b"a4")
    assert lines[0] == b"* 1 FETCH (BODY[] {%d}" % len(MESSAGE)
    await z.send(b"a5 COMPRESS DEFLATE")
    lines = await z.until_tagged(b"a5")
    assert lines[-1] == b"a5 NO [COMPRESSIONACTIVE] compression already active"


async def test_notify_pushes_other_mailboxes(imap: ImapServer) -> None:
    a = await imap.transcript(login=True)
    await a.transact("a1 SELECT Inbox")
    await a.transact(
        "a2 NOTIFY SET (selected (MessageNew MessageExpunge)) "
        "(personal (MessageNew MessageExpunge MailboxName SubscriptionChange))"
    )
    await imap.account.deliver("Archive", MESSAGE)
    # Without any command from the client (RFC 5465 §3).
    assert await a.read_response() == b'* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)'
    await imap.account.deliver("Inbox", MESSAGE)
    assert await a.read_response() == b"* 1 EXISTS"
    b = await imap.transcript(login=True)
    await b.transact("b1 CREATE Projects")
    assert await a.read_response() == b'* LIST () "/" "Projects"'
    assert await a.read_response() == b'* LIST (\\Subscribed) "/" "Projects"'
    await b.transact("b2 RENAME Projects Work")
    lines = [await a.read_response() for _ in range(3)]
    assert b'* LIST () "/" "Work" ("OLDNAME" ("Projects"))' in lines
    await a.transact("a3 NOTIFY NONE")
    await a.transact('a4 NOTIFY SET STATUS (mailboxes "Archive" (MessageNew MessageExpunge))')
    assert a.last == b"a4 OK NOTIFY completed"
    await a.transact("a5 NOTIFY SET (selected (MailboxName))", "NO")  # [BADEVENT]
    await a.transact("a6 NOTIFY SET (personal (FlagChange))", "NO")
    await a.transact("a7 NOTIFY SET (personal (Bogus))", "BAD")


async def test_notify_status_indicator(imap: ImapServer) -> None:
    await imap.account.deliver("Archive", MESSAGE)
    a = await imap.transcript(login=True)
    lines = await a.transact(
        'a1 NOTIFY SET STATUS (mailboxes "Archive" (MessageNew MessageExpunge))'
    )
    assert lines == [b'* STATUS "Archive" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)']


async def test_metadata_and_list_metadata(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact('a1 SETMETADATA Inbox (/private/comment "my inbox" /shared/x/y "z")')
    await tc.transact('a2 SETMETADATA "" (/private/vendor/foo {3+}\r\nbar)')
    assert await tc.transact("a3 GETMETADATA Inbox /private/comment") == [
        b'* METADATA "Inbox" ("/private/comment" "my inbox")'
    ]
    assert await tc.transact("a4 GETMETADATA (DEPTH infinity) Inbox (/shared)") == [
        b'* METADATA "Inbox" ("/shared/x/y" "z")'
    ]
    assert await tc.transact("a5 GETMETADATA (DEPTH 1) Inbox /shared") == []
    assert await tc.transact("a6 GETMETADATA (MAXSIZE 3) Inbox (/private/comment)") == []
    assert tc.last == b"a6 OK [METADATA LONGENTRIES 8] GETMETADATA completed"
    assert await tc.transact('a7 GETMETADATA "" /private/vendor/foo') == [
        b'* METADATA "" ("/private/vendor/foo" "bar")'
    ]
    assert await tc.transact(
        'a8 LIST "" "In*" RETURN (METADATA (/private/comment /private/none))'
    ) == [
        b'* LIST (\\HasNoChildren) "/" "Inbox"',
        b'* METADATA "Inbox" ("/private/comment" "my inbox" "/private/none" NIL)',
    ]
    await tc.transact("a9 SETMETADATA Inbox (/private/comment NIL)")
    assert await tc.transact("b1 GETMETADATA Inbox /private/comment") == []
    await tc.transact('b2 SETMETADATA Nowhere (/private/comment "x")', "NO")
    await tc.transact("b3 SETMETADATA Inbox (/other/comment x)", "BAD")


async def test_quota(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    assert await tc.transact("a1 GETQUOTAROOT Inbox") == [b'* QUOTAROOT "Inbox" ""']
    imap.account.quota = 10 * 1024 * 1024
    assert await tc.transact("a2 GETQUOTAROOT Inbox") == [
        b'* QUOTAROOT "Inbox" ""',
        b'* QUOTA "" (STORAGE 1 10240)',  # RFC 9208 §5.1: units of 1024 octets
    ]
    assert await tc.transact('a3 GETQUOTA ""') == [b'* QUOTA "" (STORAGE 1 10240)']
    await tc.transact("a4 GETQUOTA other", "NO")
    await tc.transact('a5 SETQUOTA "" (STORAGE 1)', "NO")
    assert tc.last == b"a5 NO [NOPERM] quota is set by the administrator"


async def test_utf8_accept_create_special_use_status(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 ENABLE UTF8=ACCEPT")
    await tc.transact('a2 CREATE "Entwürfe" (USE (\\Drafts))'.encode())
    mb = imap.account.get_mailbox("Entwürfe")
    assert mb is not None
    assert mb.special_use == "\\Drafts"
    assert await tc.transact(b'a3 LIST "" "Entw*"') == [
        '* LIST (\\HasNoChildren \\Drafts) "/" "Entwürfe"'.encode()  # UTF-8, not UTF-7
    ]
    await tc.transact("a4 CREATE x (USE (\\Bogus))", "BAD")
    assert tc.last.startswith(b"a4 BAD [USEATTR]")
    [line] = await tc.transact(
        "a5 STATUS Inbox (MESSAGES HIGHESTMODSEQ APPENDLIMIT DELETED-STORAGE SIZE)"
    )
    assert line.startswith(b'* STATUS "Inbox" (MESSAGES 0 HIGHESTMODSEQ ')
    assert line.endswith(b" APPENDLIMIT 104857600 DELETED-STORAGE 0 SIZE 0)")


async def test_literal_over_limit_refused_without_reading(start_server: StartServer) -> None:
    imap = await start_server(max_literal=1000)
    tc = await imap.transcript(login=True)
    await tc.send(b"a1 APPEND Inbox {5000}\r\n")
    # RFC 7889 §4: refused before the client sends the data (no "+").
    assert await tc.read_response() == b"a1 NO [TOOBIG] literal too large"
    await tc.transact("a2 NOOP")
    assert b" APPENDLIMIT=1000 " in (await tc.transact("a3 CAPABILITY"))[0]
