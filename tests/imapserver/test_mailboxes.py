"""Transcripts for LIST, LSUB, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS, SELECT, EXAMINE."""

from __future__ import annotations

from .conftest import MESSAGE, ImapServer

DEFAULT_LIST = [
    b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    b'* LIST (\\HasNoChildren) "/" "Inbox"',
    b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
]


async def test_list_patterns(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    assert await tc.transact('a1 LIST "" *') == DEFAULT_LIST
    assert await tc.transact('a2 LIST "" %') == DEFAULT_LIST
    assert await tc.transact('a3 LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']  # RFC 9051 §6.3.9
    assert await tc.transact('a4 LIST "" A*') == DEFAULT_LIST[:1]
    await tc.transact("a5 CREATE Inbox/todo")
    assert await tc.transact('a6 LIST "" INBOX*') == [
        b'* LIST (\\HasChildren) "/" "Inbox"',
        b'* LIST (\\HasNoChildren) "/" "Inbox/todo"',
    ]
    # "INBOX" in any case as the first level means Inbox; patterns matching the upper-case
    # "INBOX" find it too (RFC 9051 §6.3.9), patterns matching neither do not.
    assert await tc.transact('a7 LIST "" inbox/%') == [b'* LIST (\\HasNoChildren) "/" "Inbox/todo"']
    assert len(await tc.transact('a8 LIST "" INBO*')) == 2
    assert await tc.transact('a8 LIST "" inbo*') == []
    assert await tc.transact("a9 LIST Inbox/ %") == [b'* LIST (\\HasNoChildren) "/" "Inbox/todo"']
    assert await tc.transact('b1 LIST "" %') == [
        *DEFAULT_LIST[:2],
        b'* LIST (\\HasChildren) "/" "Inbox"',
        *DEFAULT_LIST[3:],
    ]


async def test_list_extended(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 CREATE a/b")
    await tc.transact("a2 UNSUBSCRIBE a")
    await tc.transact("a3 SUBSCRIBE ghost")
    assert await tc.transact('a4 LIST (SUBSCRIBED) "" (a* g*)') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "a/b"',
        b'* LIST (\\NonExistent \\Subscribed) "/" "ghost"',
    ]
    # RFC 5258 §3.5: "a" is not subscribed but has a subscribed child.
    assert await tc.transact('a5 LIST (SUBSCRIBED RECURSIVEMATCH) "" a') == [
        b'* LIST (\\HasChildren) "/" "a" ("CHILDINFO" ("SUBSCRIBED"))'
    ]
    assert await tc.transact('a6 LIST (SPECIAL-USE) "" *') == [
        DEFAULT_LIST[0],
        DEFAULT_LIST[1],
        DEFAULT_LIST[3],
        DEFAULT_LIST[4],
        DEFAULT_LIST[5],
    ]
    await tc.send(b"x\r\n")  # stray line: untagged BAD
    await tc.read_response()
    assert await tc.transact('a7 LIST "" Inbox RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))') == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Inbox"',
        b'* STATUS "Inbox" (MESSAGES 0 UIDNEXT 1)',
    ]
    await tc.transact('a8 LIST (BOGUS) "" *', "BAD")
    await tc.transact('a9 LIST "" * RETURN (BOGUS)', "BAD")


async def test_create_delete_rename(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 CREATE INBOX", "NO")  # RFC 9051 §6.3.4
    assert tc.last == b"a1 NO [ALREADYEXISTS] INBOX always exists"
    await tc.transact("a2 CREATE Archive", "NO")
    assert tc.last.startswith(b"a2 NO [ALREADYEXISTS]")
    await tc.transact("a3 CREATE projects/2024/")  # trailing separator is dropped
    assert imap.account.get_mailbox("projects/2024") is not None
    assert {"projects", "projects/2024"} <= set(imap.account.subscriptions())
    await tc.transact("a4 DELETE projects", "NO")
    assert tc.last.startswith(b"a4 NO [HASCHILDREN]")
    await tc.transact("a5 DELETE nothere", "NO")
    assert tc.last.startswith(b"a5 NO [NONEXISTENT]")
    await tc.transact("a6 DELETE inbox", "NO")
    await tc.transact("a7 RENAME projects/2024 projects/2025")
    assert imap.account.get_mailbox("projects/2025") is not None
    assert imap.account.get_mailbox("projects/2024") is None
    await tc.transact("a8 RENAME projects/2025 Archive", "NO")
    assert tc.last.startswith(b"a8 NO [ALREADYEXISTS]")
    await tc.transact("a9 RENAME nothere x", "NO")
    assert tc.last.startswith(b"a9 NO [NONEXISTENT]")
    await tc.transact("b1 DELETE projects/2025")
    await tc.transact("b2 DELETE projects")
    await tc.transact("b3 CREATE a%b", "BAD")  # not an astring
    await tc.transact('b3 CREATE "a%b"', "NO")  # wildcards cannot be in names
    assert tc.last.startswith(b"b3 NO [CANNOT]")
    await tc.transact('b4 CREATE "a//b"', "NO")


async def test_rename_inbox_moves_messages(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 RENAME INBOX old-inbox")  # RFC 9051 §6.3.6
    assert await tc.transact("a2 STATUS old-inbox (MESSAGES)") == [
        b'* STATUS "old-inbox" (MESSAGES 1)'
    ]
    assert await tc.transact("a3 STATUS INBOX (MESSAGES)") == [b'* STATUS "Inbox" (MESSAGES 0)']


async def test_delete_selected_mailbox(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    other = await imap.transcript(login=True)
    await tc.transact("a1 CREATE tmp")
    await tc.transact("a2 SELECT tmp")
    await tc.transact("a3 DELETE tmp", "NO")
    assert tc.last.startswith(b"a3 NO [INUSE]")
    await other.transact("b1 DELETE tmp")
    # The selected session learns at its next command and cannot continue.
    await tc.send(b"a4 NOOP\r\n")
    assert await tc.read_response() == b"* BYE selected mailbox was deleted"
    assert await tc.read_until_closed() == b""


async def test_subscribe_lsub(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SUBSCRIBE elsewhere")
    await tc.transact("a2 UNSUBSCRIBE Junk")
    await tc.transact("a3 UNSUBSCRIBE Junk", "NO")
    lsub = await tc.transact('a4 LSUB "" *')
    assert b'* LSUB () "/" "Inbox"' in lsub
    assert b'* LSUB (\\Noselect) "/" "elsewhere"' in lsub
    assert not any(b'"Junk"' in line for line in lsub)


async def test_status(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE, flags=["\\Seen"])
    await imap.account.deliver("Inbox", MESSAGE, flags=["\\Deleted"])
    tc = await imap.transcript(login=True)
    mb = imap.account.get_mailbox("Inbox")
    assert mb is not None
    [line] = await tc.transact(
        "a1 STATUS inbox (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)"
    )
    assert line == (
        b'* STATUS "Inbox" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 1 DELETED 1 SIZE %d '
        b"RECENT 0)" % (mb.uidvalidity, 2 * len(MESSAGE))
    )
    await tc.transact("a2 STATUS nothere (MESSAGES)", "NO")
    await tc.transact("a3 STATUS Inbox (BOGUS)", "BAD")


async def test_select_examine_rev1_and_rev2(imap: ImapServer) -> None:
    await imap.account.deliver("Inbox", MESSAGE, flags=["\\Seen", "$label1"])
    await imap.account.deliver("Inbox", MESSAGE)
    mb = imap.account.get_mailbox("Inbox")
    assert mb is not None
    tc = await imap.transcript(login=True)
    untagged = await tc.transact("a1 SELECT INBOX")
    assert untagged == [
        b"* 2 EXISTS",
        b"* 0 RECENT",
        b"* OK [UIDVALIDITY %d] UIDs valid" % mb.uidvalidity,
        b"* OK [UIDNEXT 3] next UID",
        b"* OK [HIGHESTMODSEQ %d] highest modseq" % mb.highest_modseq,  # RFC 7162 §3.1.2.1
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1)",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1 \\*)] "
        b"permanent flags",
        b"* OK [UNSEEN 2] first unseen",
    ]
    assert tc.last == b"a1 OK [READ-WRITE] SELECT completed"
    untagged = await tc.transact("a2 EXAMINE Sent")
    assert untagged[0] == b"* OK [CLOSED] previous mailbox is now closed"  # RFC 9051 §6.3.2
    assert b"* OK [PERMANENTFLAGS ()] permanent flags" in untagged
    assert tc.last == b"a2 OK [READ-ONLY] EXAMINE completed"
    await tc.transact("a3 SELECT nothere", "NO")
    await tc.transact("a4 FETCH 1 FLAGS", "BAD")  # the failed SELECT left the selected state
    await tc.transact("a5 ENABLE IMAP4rev2")
    untagged = await tc.transact("a6 SELECT Inbox")
    assert b"* 0 RECENT" not in untagged
    assert untagged[-1] == b'* LIST (\\HasNoChildren) "/" "Inbox"'  # RFC 9051 §6.3.2


async def test_mailbox_names_modified_utf7_and_utf8(imap: ImapServer) -> None:
    tc = await imap.transcript(login=True)
    await tc.transact("a1 CREATE ~peter/mail/&U,BTFw-/&ZeVnLIqe-")  # RFC 3501 §5.1.3
    assert imap.account.get_mailbox("~peter/mail/台北/日本語") is not None
    assert await tc.transact('a2 LIST "" ~peter/mail/*/*') == [
        b'* LIST (\\HasNoChildren) "/" "~peter/mail/&U,BTFw-/&ZeVnLIqe-"'
    ]
    await tc.transact("a3 CREATE &AGE-", "BAD")  # invalid modified UTF-7
    await tc.transact("a4 ENABLE IMAP4rev2")
    assert await tc.transact('a5 LIST "" ~peter/mail/*/*') == [
        '* LIST (\\HasNoChildren) "/" "~peter/mail/台北/日本語"'.encode()
    ]
