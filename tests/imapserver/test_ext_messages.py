"""Transcripts for the message extensions: CONDSTORE/QRESYNC, MOVE, REPLACE, MULTIAPPEND, BINARY,
SEARCH (full-text index, SEARCHRES, MULTISEARCH, MODSEQ, SAVEDATE, WITHIN), SORT/THREAD, UIDONLY,
PREVIEW and SAVEDATE fetch items."""

from __future__ import annotations

import re

from mox.imapserver.sort import base_subject

from .conftest import MESSAGE, ImapServer

QP_LATIN1 = (
    b"From: Ren\xe9 <rene@example.org>\r\n"
    b"Subject: =?iso-8859-1?q?Caf=E9_menu?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Cr=E8me br=FBl=E9e for dessert\r\n"
)
BASE64_MULTIPART = (
    b"From: Alice <alice@example.org>\r\n"
    b"Subject: report\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"UXVhcnRlcmx5IGZpZ3VyZXMgYXR0YWNoZWQ=\r\n"  # "Quarterly figures attached"
    b"--b1\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"c2VjcmV0IHBheWxvYWQ=\r\n"  # "secret payload" - not text, not indexed
    b"--b1--\r\n"
)


def _modseq(line: bytes) -> int:
    m = re.search(rb"MODSEQ \((\d+)\)", line) or re.search(rb"HIGHESTMODSEQ (\d+)", line)
    assert m is not None, line
    return int(m.group(1))


async def test_condstore_fetch_store_search(imap: ImapServer) -> None:
    for _ in range(3):
        await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    lines = await tc.transact("a1 SELECT Inbox (CONDSTORE)")  # RFC 7162 §3.1.8
    [hms] = [ln for ln in lines if b"HIGHESTMODSEQ" in ln]
    base = _modseq(hms)
    [line] = await tc.transact("a2 STORE 2 +FLAGS (\\Flagged)")
    assert line.startswith(b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (")  # CONDSTORE enabled
    changed = _modseq(line)
    assert changed > base
    assert await tc.transact(f"a3 FETCH 1:3 (FLAGS) (CHANGEDSINCE {base})") == [
        b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (%d))" % changed
    ]
    assert await tc.transact(f"a4 SEARCH MODSEQ {changed}") == [
        b"* SEARCH 2 (MODSEQ %d)" % changed  # RFC 7162 §3.1.5
    ]
    # UNCHANGEDSINCE older than message 2's modseq: 2 is left alone and reported as MODIFIED.
    lines = await tc.transact(f"a5 STORE 1:3 (UNCHANGEDSINCE {base}) +FLAGS.SILENT (\\Seen)")
    assert tc.last == b"a5 OK [MODIFIED 2] conditional STORE failed for some messages"
    # .SILENT with CONDSTORE: only the new MODSEQ of the changed messages (RFC 7162 §3.1.3).
    assert lines == [b"* %d FETCH (MODSEQ (%d))" % (n, changed + 1) for n in (1, 3)]
    flags = {m.uid: m.flags for m in imap.account.list_messages(1)}
    assert flags == {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: {"\\Seen"}}
    [status] = await tc.transact("a6 STATUS Archive (HIGHESTMODSEQ MESSAGES)")
    assert status.startswith(b'* STATUS "Archive" (HIGHESTMODSEQ ')
    await tc.transact("a7 FETCH 1 (FLAGS) (CHANGEDSINCE x)", "BAD")


async def test_qresync_select_and_vanished(imap: ImapServer) -> None:
    for _ in range(4):
        await imap.account.deliver("Inbox", MESSAGE)
    mb = imap.account.get_mailbox("Inbox")
    assert mb is not None
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox (QRESYNC (1 1))", "BAD")  # RFC 7162 §3.2.5: ENABLE first
    assert await tc.transact("a2 ENABLE QRESYNC") == [b"* ENABLED QRESYNC"]
    await tc.transact("a3 SELECT Inbox")
    base = imap.account.mailbox_status(mb.id).highest_modseq
    assert await tc.transact("a4 STORE 1,3 +FLAGS.SILENT (\\Deleted)") == [
        b"* 1 FETCH (MODSEQ (%d))" % (base + 1),
        b"* 3 FETCH (MODSEQ (%d))" % (base + 1),
    ]
    assert await tc.transact("a5 EXPUNGE") == [b"* VANISHED 1,3"]  # RFC 7162 §3.2.10
    await tc.transact("a6 STORE 1 +FLAGS.SILENT (\\Answered)")
    assert await tc.transact(f"a7 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {base} VANISHED)") == [
        b"* VANISHED (EARLIER) 1,3",
        b"* 1 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (%d))" % (base + 3),
    ]
    await tc.transact("a8 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "BAD")  # UID FETCH only
    await tc.transact("a9 UNSELECT")
    lines = await tc.transact(f"b1 SELECT Inbox (QRESYNC ({mb.uidvalidity} {base} 1:3))")
    assert b"* VANISHED (EARLIER) 1,3" in lines
    assert b"* 1 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (%d))" % (base + 3) in lines
    # A wrong UIDVALIDITY: a plain select, no resync data (RFC 7162 §3.2.5.2).
    await tc.transact("b2 UNSELECT")
    lines = await tc.transact(f"b3 SELECT Inbox (QRESYNC ({mb.uidvalidity + 100} {base}))")
    assert not any(b"VANISHED" in ln or b"FETCH" in ln for ln in lines)


async def test_move_and_junk_flags(imap: ImapServer) -> None:
    for _ in range(3):
        await imap.account.deliver("Inbox", MESSAGE, flags=["$notjunk"])
    junk = imap.account.get_mailbox("Junk")
    assert junk is not None
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 MOVE 2:3 Junk") == [
        b"* OK [COPYUID %d 2:3 1:2] moved" % junk.uidvalidity,  # RFC 6851 §4.3
        b"* 2 EXPUNGE",
        b"* 2 EXPUNGE",
    ]
    moved = imap.account.list_messages(junk.id)
    assert [m.flags for m in moved] == [frozenset({"$junk"})] * 2  # and $notjunk cleared
    assert imap.account.read_message(moved[0]) == MESSAGE
    await tc.transact("a3 UID MOVE 1 Nowhere", "NO")
    assert tc.last == b"a3 NO [TRYCREATE] no such mailbox"
    await tc.transact("a4 MOVE 1 Inbox", "NO")
    await tc.transact("a5 SELECT Junk")
    await tc.transact("a6 UID MOVE 1 Inbox")  # out of Junk into a neutral mailbox
    [back] = imap.account.list_messages(1)[-1:]
    assert back.flags == frozenset()
    await tc.transact("a7 EXAMINE Junk")
    await tc.transact("a8 MOVE 1 Inbox", "NO")  # read-only


async def test_fulltext_search(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", QP_LATIN1)
    await imap.account.deliver("Inbox", BASE64_MULTIPART)
    await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    # Charset and transfer encodings are undone; case-insensitive (RFC 9051 §6.4.4).
    assert await tc.transact('a2 SEARCH CHARSET UTF-8 BODY "CRÈME BRÛLÉE"') == [b"* SEARCH 1"]
    assert await tc.transact("a3 SEARCH BODY quarterly") == [b"* SEARCH 2"]
    assert await tc.transact("a4 SEARCH BODY payload") == [b"* SEARCH"]  # not a text part
    assert await tc.transact('a5 SEARCH TEXT "café menu"') == [b"* SEARCH 1"]  # header
    assert await tc.transact('a6 SEARCH BODY "café menu"') == [b"* SEARCH"]  # not in the body
    assert await tc.transact("a7 SEARCH BODY 3:") == [b"* SEARCH 3"]  # short needle
    assert await tc.transact('a8 SEARCH NOT BODY "joe"') == [b"* SEARCH 1 2"]
    assert await tc.transact('a9 UID SEARCH OR BODY quarterly FROM "ren"') == [b"* SEARCH 1 2"]
    # Broken syntax gets BAD and the session carries on.
    await tc.transact("b1 SEARCH BODY", "BAD")
    await tc.transact("b2 SEARCH (BODY x", "BAD")
    await tc.transact("b3 FETCH 1 (BODY[1.TEXT.X])", "BAD")
    await tc.transact("b4 FETCH 1:* (FLAGS", "BAD")
    assert await tc.transact("b5 SEARCH BODY quarterly") == [b"* SEARCH 2"]


async def test_fulltext_index_used_and_fallback_for_unindexed(imap: ImapServer) -> None:
    msg = await imap.account.deliver("Inbox", MESSAGE)
    await imap.account.index_backlog()  # indexed after the delivery's commit
    assert imap.account.fts_search(1, "MEET AT 3:30", text=False) == {msg.uid}
    # The index answers without reading the file: remove the file behind the store's back.
    imap.account.message_path(msg).unlink()
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact('a2 SEARCH BODY "meet at 3:30"') == [b"* SEARCH 1"]
    # A message from before the index (indexed = 0) is searched by reading it.
    other = await imap.account.deliver("Inbox", b"Subject: old\r\n\r\nlegacy words\r\n")
    imap.account._wconn.execute("UPDATE messages SET indexed = 0 WHERE id = ?", (other.id,))
    imap.account._wconn.execute("DELETE FROM fts WHERE rowid = ?", (other.id,))
    assert imap.account.unindexed_uids(1) == {other.uid}
    assert await tc.transact("a3 NOOP") == [b"* 2 EXISTS"]
    assert await tc.transact("a4 SEARCH BODY legacy") == [b"* SEARCH 2"]


async def test_searchres_and_esearch(imap: ImapServer) -> None:
    for _ in range(4):
        await imap.account.deliver("Inbox", MESSAGE)
    await imap.account.deliver("Archive", MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    await tc.transact("a2 STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    assert await tc.transact("a3 SEARCH RETURN (SAVE) FLAGGED") == []  # RFC 5182 §2.1
    assert await tc.transact("a4 FETCH $ (UID)") == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
    assert await tc.transact("a5 SEARCH RETURN (COUNT) $") == [b'* ESEARCH (TAG "a5") COUNT 2']
    assert await tc.transact("a6 UID SEARCH RETURN (MIN MAX ALL) UNFLAGGED") == [
        b'* ESEARCH (TAG "a6") UID MIN 1 MAX 3 ALL 1,3'
    ]
    # MULTISEARCH (RFC 7377): every personal mailbox with matches, by UID.
    arch = imap.account.get_mailbox("Archive")
    inbox = imap.account.get_mailbox("Inbox")
    assert arch is not None
    assert inbox is not None
    assert await tc.transact("a7 ESEARCH IN (personal) RETURN (COUNT) UNFLAGGED") == [
        b'* ESEARCH (TAG "a7" MAILBOX "Archive" UIDVALIDITY %d) UID COUNT 1' % arch.uidvalidity,
        b'* ESEARCH (TAG "a7" MAILBOX "Inbox" UIDVALIDITY %d) UID COUNT 2' % inbox.uidvalidity,
    ]
    assert await tc.transact("a8 ESEARCH IN (mailboxes Archive) ALL") == [
        b'* ESEARCH (TAG "a8" MAILBOX "Archive" UIDVALIDITY %d) UID ALL 1' % arch.uidvalidity
    ]
    await tc.transact("a9 ESEARCH IN (personal) 1:2", "BAD")  # no sequence numbers across


async def test_savedate_within_preview(imap: ImapServer) -> None:
    html = (
        b"Subject: html\r\nContent-Type: text/html\r\n\r\n"
        b"<html><style>p{}</style><p>Hello&nbsp;<b>there</b></p>\r\n> quoted\r\n</html>\r\n"
    )
    await imap.account.deliver("Inbox", MESSAGE)
    await imap.account.deliver("Inbox", html)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    lines = await tc.transact("a2 FETCH 1:2 (PREVIEW SAVEDATE MODSEQ)")
    assert lines[0].startswith(
        b'* 1 FETCH (PREVIEW "Hello Joe, do you think we can meet at 3:30 tomorrow?" SAVEDATE "'
    )
    assert lines[1].startswith(b'* 2 FETCH (PREVIEW "Hello there" SAVEDATE')
    assert await tc.transact("a3 SEARCH SAVEDATESUPPORTED YOUNGER 3600") == [b"* SEARCH 1 2"]
    assert await tc.transact("a4 SEARCH OLDER 3600") == [b"* SEARCH"]
    assert await tc.transact("a5 SEARCH SAVEDSINCE 1-Jan-2000 SAVEDBEFORE 1-Jan-2000") == [
        b"* SEARCH"
    ]
    # ENVELOPE and BODYSTRUCTURE are parsed once and cached in the store.
    await tc.transact("a6 FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    ids = [m.id for m in imap.account.list_messages(1)]
    assert set(imap.account.get_parsed(ids)) == set(ids)
    again = await tc.transact("a7 FETCH 1 (ENVELOPE)")
    assert again[0].startswith(b'* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800 (PST)"')


async def test_multiappend_binary_utf8_replace(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    inbox = imap.account.get_mailbox("Inbox")
    assert inbox is not None
    one, two = b"Subject: 1\r\n\r\none\r\n", b"Subject: 2\r\n\r\ntwo\r\n"
    await tc.send(
        b"a1 APPEND Inbox (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(two), two)
    )
    await tc.until_tagged(b"a1")
    assert tc.last == b"a1 OK [APPENDUID %d 1:2] APPEND completed" % inbox.uidvalidity
    stored = imap.account.list_messages(inbox.id)
    assert [imap.account.read_message(m) for m in stored] == [one, two]
    assert stored[0].flags == {"\\Seen"}
    assert stored[1].flags == frozenset()
    binary = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\nnul\x00byte\r\n"
    await tc.send(b"a2 APPEND Inbox ~{%d+}\r\n%s\r\n" % (len(binary), binary))  # RFC 3516 §4.4
    await tc.until_tagged(b"a2")
    await tc.send(b"a3 APPEND Inbox {%d+}\r\n%s\r\n" % (len(binary), binary))
    await tc.until_tagged(b"a3", "BAD")  # NUL needs literal8
    utf8 = "Subject: grüße\r\n\r\nü\r\n".encode()
    await tc.send(b"a4 APPEND Inbox UTF8 (~{%d+}\r\n%s)\r\n" % (len(utf8), utf8))  # RFC 6855 §4
    await tc.until_tagged(b"a4")
    assert [imap.account.read_message(m) for m in imap.account.list_messages(inbox.id)][2:] == [
        binary,
        utf8,
    ]
    await tc.transact("a5 SELECT Inbox")
    new = b"Subject: 1 edited\r\n\r\nONE\r\n"
    lines = await tc.transact(b"a6 UID REPLACE 1 Drafts {%d+}\r\n%s" % (len(new), new))
    drafts = imap.account.get_mailbox("Drafts")
    assert drafts is not None
    assert lines == [b"* OK [APPENDUID %d 1] replaced" % drafts.uidvalidity, b"* 1 EXPUNGE"]
    assert [m.uid for m in imap.account.list_messages(inbox.id)] == [2, 3, 4]
    [d] = imap.account.list_messages(drafts.id)
    assert imap.account.read_message(d) == new
    # Over quota: NO [OVERQUOTA] before anything is stored (RFC 9208 §4.2).
    imap.account.quota = imap.account.disk_usage() + 10
    await tc.send(b"a7 APPEND Inbox {%d+}\r\n%s\r\n" % (len(one), one))
    await tc.until_tagged(b"a7", "NO")
    assert tc.last == b"a7 NO [OVERQUOTA] over quota"


async def test_sort_and_thread(imap: ImapServer) -> None:
    def msg(mid: str, subject: str, date: str, frm: str, refs: str = "") -> bytes:
        return (
            f"From: {frm}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}>\r\n"
            f"{refs}\r\nbody\r\n"
        ).encode()

    msgs = [
        msg("a@x", "Plans", "Tue, 2 Jan 2024 10:00:00 +0000", "Zed <z@x>"),
        msg(
            "b@x", "Re: Plans", "Wed, 3 Jan 2024 10:00:00 +0000", "amy@x", "In-Reply-To: <a@x>\r\n"
        ),
        msg("c@x", "Other", "Mon, 1 Jan 2024 10:00:00 +0000", "Bob <b@x>"),
        msg(
            "d@x",
            "Re: Re: Plans",
            "Thu, 4 Jan 2024 10:00:00 +0000",
            "c@x",
            "References: <a@x> <b@x>\r\n",
        ),
        msg("e@x", "Fwd: [list] plans (fwd)", "Fri, 5 Jan 2024 10:00:00 +0000", "d@x"),
        msg(
            "f@x",
            "Re: Plans",
            "Sat, 6 Jan 2024 10:00:00 +0000",
            "e@x",
            "References: <missing@x> <a@x>\r\n",
        ),
    ]
    for m in msgs:
        await imap.account.deliver("Inbox", m)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 SORT (DATE) UTF-8 ALL") == [b"* SORT 3 1 2 4 5 6"]
    assert await tc.transact("a3 SORT (REVERSE SUBJECT DATE) UTF-8 ALL") == [b"* SORT 1 2 4 5 6 3"]
    assert await tc.transact("a4 UID SORT (FROM) US-ASCII NOT SUBJECT other") == [
        b"* SORT 2 4 5 6 1"  # amy, c, d, e, z
    ]
    assert await tc.transact("a5 SORT (DISPLAY) UTF-8 ALL") == [b"* SORT 2 3 4 5 6 1"]
    assert await tc.transact("a6 THREAD REFERENCES UTF-8 ALL") == [
        b"* THREAD (3)(1 (2 4)(5)(6))"  # 6 hangs below a missing message, 5 by base subject
    ]
    assert await tc.transact("a7 THREAD ORDEREDSUBJECT UTF-8 ALL") == [
        b"* THREAD (3)(1 (2)(4)(5)(6))"
    ]
    await tc.transact("a8 SORT (BOGUS) UTF-8 ALL", "BAD")
    await tc.transact("a9 THREAD X UTF-8 ALL", "BAD")
    await tc.transact("b1 SORT (DATE) KOI8-R ALL", "NO")  # [BADCHARSET]


def test_base_subject() -> None:
    # RFC 5256 §2.1
    assert base_subject("Re: [list] Fwd: Hello (fwd)") == "HELLO"
    assert base_subject("[fwd: Re: lunch]") == "LUNCH"
    assert base_subject("  Re:   re[2]:  A   b ") == "A B"
    assert base_subject("[only blob]") == "[ONLY BLOB]"
    assert base_subject("") == ""


async def test_uidonly(imap: ImapServer) -> None:
    for _ in range(2):
        await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    assert await tc.transact("a1 ENABLE UIDONLY") == [b"* ENABLED UIDONLY"]
    await tc.transact("a2 SELECT Inbox")
    await tc.transact("a3 FETCH 1 (FLAGS)", "BAD")
    assert tc.last == b"a3 BAD [UIDREQUIRED] use UID commands"  # RFC 9586 §3.2
    assert await tc.transact("a4 UID FETCH 2 (FLAGS)") == [b"* 2 UIDFETCH (FLAGS ())"]
    await tc.transact("a5 UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await tc.transact("a6 UID EXPUNGE 1") == [b"* VANISHED 1"]
    await tc.transact("a7 SEARCH ALL", "BAD")
    assert await tc.transact("a8 UID SEARCH ALL") == [b"* SEARCH 2"]
