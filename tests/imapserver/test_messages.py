"""Transcripts for FETCH, STORE, SEARCH, EXPUNGE, COPY, APPEND, CLOSE, UNSELECT."""

from __future__ import annotations

from datetime import UTC, datetime

from .conftest import MESSAGE, ImapServer

MULTIPART = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>, team: carol@example.org, dave@example.org;\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= report\r\n"
    b"Date: Tue, 2 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <multi@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream; name=data.bin\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=data.bin\r\n"
    b"\r\n"
    b"AAECAw==\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"From: x@example.org\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--b1--\r\n"
    b"epilogue\r\n"
)


async def _deliver(imap: ImapServer, data: bytes, *flags: str) -> int:
    msg = await imap.account.deliver(
        "Inbox", data, flags=flags, internal_date=datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
    )
    return msg.uid


async def test_fetch_rfc822_and_sections_byte_exact(imap: ImapServer) -> None:
    await _deliver(imap, MULTIPART)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    [line] = await tc.transact("a2 FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert line == b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (
        len(MULTIPART),
        len(MULTIPART),
        MULTIPART,
    )
    [line] = await tc.transact("a3 FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[3.HEADER])")
    part1 = b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln"
    mime2 = (
        b"Content-Type: application/octet-stream; name=data.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=data.bin\r\n\r\n"
    )
    inner_header = b"Subject: inner\r\nFrom: x@example.org\r\n\r\n"
    assert line == (
        b"* 1 FETCH (BODY[1] {%d}\r\n%s BODY[2.MIME] {%d}\r\n%s BODY[3.HEADER] {%d}\r\n%s)"
        % (len(part1), part1, len(mime2), mime2, len(inner_header), inner_header)
    )
    [line] = await tc.transact("a4 FETCH 1 (BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[9])")
    # Body sections always go out as literals; a missing part is NIL.
    assert (
        line
        == b"* 1 FETCH (BODY[3.TEXT] {10}\r\ninner body BODY[3.1] {10}\r\ninner body BODY[9] NIL)"
    )
    [line] = await tc.transact(
        "a5 FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject message-id)] BODY.PEEK[TEXT]<0.8>)"
    )
    fields = b"Subject: =?utf-8?q?caf=C3=A9?= report\r\nMessage-ID: <multi@example.org>\r\n\r\n"
    assert (
        line == b"* 1 FETCH (BODY[HEADER.FIELDS (subject message-id)] {%d}\r\n%s "
        b"BODY[TEXT]<0> {8}\r\npreamble)"
        % (
            len(fields),
            fields,
        )
    )
    [line] = await tc.transact("a6 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[2])")
    text = "Grüße aus Köln".encode()
    assert (
        line
        == b"* 1 FETCH (BINARY[1] {%d}\r\n%s BINARY.SIZE[2] 4 BINARY[2] ~{4}\r\n\x00\x01\x02\x03)"
        % (
            len(text),
            text,
        )
    )
    [line] = await tc.transact(
        "a7 FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (To From Subject Date Message-ID Content-Type)]"
    )
    assert (
        line
        == b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (To From Subject Date Message-ID Content-Type)] "
        b"{21}\r\nMIME-Version: 1.0\r\n\r\n)"
    )
    # Nothing so far set \Seen.
    assert await tc.transact("a8 FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS ())"]


async def test_fetch_envelope_and_bodystructure(imap: ImapServer) -> None:
    await _deliver(imap, MULTIPART)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 EXAMINE Inbox")
    [line] = await tc.transact("a2 FETCH 1 (ENVELOPE INTERNALDATE UID)")
    assert line == (
        b'* 1 FETCH (ENVELOPE ("Tue, 2 Jan 2024 10:00:00 +0100" "=?utf-8?q?caf=C3=A9?= report" '
        b'(("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) '
        b'(("Alice" NIL "alice" "example.org")) '
        b'(("Bob" NIL "bob" "example.org") (NIL NIL "team" NIL) (NIL NIL "carol" "example.org") '
        b'(NIL NIL "dave" "example.org") (NIL NIL NIL NIL)) NIL NIL NIL "<multi@example.org>") '
        b'INTERNALDATE " 2-Jan-2024 09:00:00 +0000" UID 1)'
    )
    [line] = await tc.transact("a3 FETCH 1 BODYSTRUCTURE")
    assert line == (
        b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL '
        b'"QUOTED-PRINTABLE" 29 1 NIL NIL NIL NIL) ("APPLICATION" "OCTET-STREAM" '
        b'("NAME" "data.bin") NIL NIL "BASE64" 8 NIL ("attachment" ("FILENAME" "data.bin")) '
        b"NIL NIL)"
        b' ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 49 (NIL "inner" ((NIL NIL "x" "example.org")) '
        b'((NIL NIL "x" "example.org")) ((NIL NIL "x" "example.org")) NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) 4 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL))'
    )
    [line] = await tc.transact("a4 FETCH 1 BODY")
    assert line.startswith(b'* 1 FETCH (BODY (("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL')
    assert b'"MIXED"' in line
    assert b"BOUNDARY" not in line  # no extension data in BODY


async def test_fetch_sets_seen_unless_peek_or_readonly(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE)
    await _deliver(imap, MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 EXAMINE Inbox")
    await tc.transact("a2 FETCH 1 BODY[]")
    await tc.transact("a3 SELECT Inbox")
    assert await tc.transact("a4 FETCH 1 (FLAGS)") == [b"* 1 FETCH (FLAGS ())"]
    [line] = await tc.transact("a5 FETCH 1 RFC822.HEADER")
    assert b"FLAGS" not in line  # RFC822.HEADER is a peek
    [line] = await tc.transact("a6 FETCH 1 BODY[TEXT]")
    assert line.endswith(b" FLAGS (\\Seen))")  # RFC 9051 §6.4.5
    [line] = await tc.transact("a7 UID FETCH 2 (RFC822.TEXT FLAGS)")
    assert line.startswith(b"* 2 FETCH (UID 2 RFC822.TEXT ")
    assert line.endswith(b"FLAGS (\\Seen))")
    assert all("\\Seen" in m.flags for m in imap.account.list_messages(1))


async def test_fetch_macros_and_ranges(imap: ImapServer) -> None:
    for _ in range(3):
        await _deliver(imap, MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    lines = await tc.transact("a2 FETCH 1:* FAST")
    assert lines == [
        b'* %d FETCH (FLAGS () INTERNALDATE " 2-Jan-2024 09:00:00 +0000" RFC822.SIZE %d)'
        % (i, len(MESSAGE))
        for i in (1, 2, 3)
    ]
    assert len(await tc.transact("a3 FETCH 2,* ALL")) == 2
    await tc.transact("a4 FETCH 4 FLAGS", "BAD")  # sequence number out of range
    assert await tc.transact("a5 UID FETCH 7:* FLAGS") == [
        b"* 3 FETCH (UID 3 FLAGS ())"
    ]  # RFC 9051 §6.4.8
    assert await tc.transact("a6 UID FETCH 10,20 FLAGS") == []
    await tc.transact("a7 FETCH 1 (BODY[HEADER.FIELDS ()])", "BAD")


async def test_fetch_empty_mailbox(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 FETCH 1:* FLAGS") == []
    assert await tc.transact("a3 UID FETCH 1:* FLAGS") == []
    await tc.transact("a4 FETCH 1 FLAGS", "BAD")


async def test_store(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE)
    await _deliver(imap, MESSAGE, "\\Seen")
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 STORE 1:2 +FLAGS (\\Flagged)") == [
        b"* 1 FETCH (FLAGS (\\Flagged))",
        b"* 2 FETCH (FLAGS (\\Flagged \\Seen))",
    ]
    assert await tc.transact("a3 UID STORE 2 -FLAGS.SILENT (\\Seen)") == []
    assert await tc.transact("a4 STORE 2 FLAGS (\\Answered $Forwarded)") == [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $forwarded)",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $forwarded \\*)] "
        b"permanent flags",
        b"* 2 FETCH (FLAGS (\\Answered $forwarded))",
    ]
    assert await tc.transact("a5 UID STORE 1 FLAGS ()") == [b"* 1 FETCH (UID 1 FLAGS ())"]
    await tc.transact("a6 STORE 1 +FLAGS (\\Recent)", "BAD")
    await tc.transact("a7 STORE 3 +FLAGS (\\Seen)", "BAD")
    [m1, m2] = imap.account.list_messages(1)
    assert m1.flags == frozenset()
    assert m2.flags == {"\\Answered", "$forwarded"}
    await tc.transact("a8 EXAMINE Inbox")
    await tc.transact("a9 STORE 1 +FLAGS (\\Seen)", "NO")


async def test_search(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE, "\\Seen")
    await _deliver(imap, MULTIPART, "\\Flagged", "$work")
    await _deliver(imap, b"Subject: small\r\n\r\nx\r\n", "\\Deleted")
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")

    async def search(criteria: str) -> bytes:
        [line] = await tc.transact(f"s SEARCH {criteria}")
        return line

    assert await search("ALL") == b"* SEARCH 1 2 3"
    assert await search("SEEN") == b"* SEARCH 1"
    assert await search("UNSEEN") == b"* SEARCH 2 3"
    assert await search("FLAGGED KEYWORD $WORK") == b"* SEARCH 2"
    assert await search("DELETED") == b"* SEARCH 3"
    assert await search("UNDELETED NOT SEEN") == b"* SEARCH 2"
    assert await search("OR SEEN DELETED") == b"* SEARCH 1 3"
    assert await search("ANSWERED") == b"* SEARCH"
    assert await search("FROM foobar") == b"* SEARCH 1"
    assert await search('TO "carol@"') == b"* SEARCH 2"
    assert await search('SUBJECT "CAFÉ"') == b"* SEARCH 2"  # encoded-word decoded, case folded
    assert await search('HEADER Message-ID ""') == b"* SEARCH 1 2"
    assert await search('BODY "köln"') == b"* SEARCH 2"  # transfer and charset decoded
    assert await search("BODY inner") == b"* SEARCH 2"
    assert await search("TEXT afternoon") == b"* SEARCH 1"  # header text counts for TEXT
    assert await search("BODY afternoon") == b"* SEARCH"
    assert await search("SENTBEFORE 1-Jan-2000") == b"* SEARCH 1"
    assert await search("SENTON 2-Jan-2024") == b"* SEARCH 2"
    assert await search("SINCE 2-Jan-2024 BEFORE 3-Jan-2024") == b"* SEARCH 1 2 3"
    assert await search("ON 3-Jan-2024") == b"* SEARCH"
    assert await search("LARGER 100 SMALLER 400") == b"* SEARCH 1"
    assert await search("2:* UID 1:2") == b"* SEARCH 2"
    assert await search("(SEEN) (OR FLAGGED DELETED)") == b"* SEARCH"
    assert await search("NEW") == b"* SEARCH"  # no \Recent in IMAP4rev2 stores
    assert await search("OLD") == b"* SEARCH 1 2 3"
    [line] = await tc.transact("u UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert line == b'* ESEARCH (TAG "u") UID MIN 2 MAX 3 ALL 2:3 COUNT 2'
    [line] = await tc.transact("c SEARCH RETURN (COUNT) ANSWERED")
    assert line == b'* ESEARCH (TAG "c") COUNT 0'
    await tc.transact("b SEARCH CHARSET KOI8-R ALL", "NO")
    assert tc.last == b"b NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"
    await tc.transact("b2 SEARCH BOGUS", "BAD")


async def test_search_rev2_gives_esearch(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a0 ENABLE IMAP4rev2")
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 SEARCH ALL") == [b'* ESEARCH (TAG "a2") ALL 1']  # RFC 9051 §6.4.4
    assert await tc.transact("a3 UID SEARCH DELETED") == [b'* ESEARCH (TAG "a3") UID']


async def test_expunge_and_uid_expunge(imap: ImapServer) -> None:
    for i in range(5):
        await _deliver(imap, MESSAGE, *(["\\Deleted"] if i in (1, 2, 4) else []))
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 UID EXPUNGE 1:2") == [b"* 2 EXPUNGE"]  # RFC 4315 §2.1
    # RFC 9051 §7.5.1: each EXPUNGE renumbers; uid 3 is seq 2 and uid 5 becomes seq 3 after it.
    assert await tc.transact("a3 EXPUNGE") == [b"* 2 EXPUNGE", b"* 3 EXPUNGE"]
    assert await tc.transact("a4 UID SEARCH ALL") == [b"* SEARCH 1 4"]
    await tc.transact("a5 EXAMINE Inbox")
    await tc.transact("a6 EXPUNGE", "NO")


async def test_close_expunges_silently_unselect_does_not(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE, "\\Deleted")
    await _deliver(imap, MESSAGE, "\\Deleted")
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 UNSELECT") == []
    assert len(imap.account.list_messages(1)) == 2
    await tc.transact("a3 FETCH 1 FLAGS", "BAD")
    await tc.transact("a4 EXAMINE Inbox")
    await tc.transact("a5 CLOSE")  # read-only: nothing is expunged
    assert len(imap.account.list_messages(1)) == 2
    await tc.transact("a6 SELECT Inbox")
    assert await tc.transact("a7 CLOSE") == []  # RFC 9051 §6.4.1: no EXPUNGE responses
    assert imap.account.list_messages(1) == []
    await tc.transact("a8 CLOSE", "BAD")


async def test_copy(imap: ImapServer) -> None:
    for _ in range(3):
        await _deliver(imap, MESSAGE, "\\Seen")
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    archive = imap.account.get_mailbox("Archive")
    assert archive is not None
    await tc.transact("a2 COPY 2:3 Archive")
    assert tc.last == b"a2 OK [COPYUID %d 2:3 1:2] COPY completed" % archive.uidvalidity
    await tc.transact("a3 UID COPY 1 Archive")
    assert tc.last == b"a3 OK [COPYUID %d 1 3] COPY completed" % archive.uidvalidity
    await tc.transact("a4 COPY 1 Nowhere", "NO")
    assert tc.last == b"a4 NO [TRYCREATE] no such mailbox"  # RFC 9051 §6.4.7
    copied = imap.account.list_messages(archive.id)
    # As the Go mox's AutomaticJunkFlags: a copy into Archive is marked $NotJunk.
    assert [m.flags for m in copied] == [frozenset({"\\Seen", "$notjunk"})] * 3
    assert imap.account.read_message(copied[0]) == MESSAGE


async def test_append(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    inbox = imap.account.get_mailbox("Inbox")
    assert inbox is not None
    await tc.send(
        b'a1 APPEND Inbox (\\Seen $x) " 7-Feb-1994 21:52:25 -0800" {%d}\r\n' % len(MESSAGE)
    )
    assert await tc.read_response() == b"+ Ready for literal data"
    await tc.send(MESSAGE + b"\r\n")
    await tc.until_tagged(b"a1")
    assert tc.last == b"a1 OK [APPENDUID %d 1] APPEND completed" % inbox.uidvalidity  # RFC 4315
    [msg] = imap.account.list_messages(inbox.id)
    assert imap.account.read_message(msg) == MESSAGE
    assert msg.flags == {"\\Seen", "$x"}
    assert msg.internal_date == datetime(1994, 2, 8, 5, 52, 25, tzinfo=UTC)
    await tc.send(b"a2 APPEND Nowhere {3+}\r\nabc\r\n")
    await tc.until_tagged(b"a2", "NO")
    assert tc.last == b"a2 NO [TRYCREATE] no such mailbox"
    await tc.send(b"a3 APPEND Inbox {0+}\r\n\r\n")
    await tc.until_tagged(b"a3", "NO")
    # APPEND to the selected mailbox: EXISTS right away (RFC 9051 §6.3.12).
    await tc.transact("a4 SELECT Inbox")
    await tc.send(b"a5 APPEND Inbox {5+}\r\nx\r\n\r\n\r\n")
    assert await tc.until_tagged(b"a5") == [b"* 2 EXISTS"]


async def test_check_and_state_rules(imap: ImapServer) -> None:
    await _deliver(imap, MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 CHECK", "BAD")  # selected state only (RFC 3501 §6.4.1)
    await tc.transact("a2 SELECT Inbox")
    await imap.account.deliver("Inbox", MESSAGE)
    assert await tc.transact("a3 CHECK") == [b"* 2 EXISTS"]
    await tc.transact("a4 UID FETCH 1 BODY[1.HEADER]")
    assert await tc.transact("a5 UID FETCH 1 BODY.PEEK[1.HEADER]") == [
        b'* 1 FETCH (UID 1 BODY[1.HEADER] "")'
    ]
