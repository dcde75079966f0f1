"""The paths made fast for issue #13 give the same answers as the slow ones did: SELECT without
loading every message, STORE and change reports with flags read on demand, SEARCH narrowed by the
full-text index, lazily decoded parse cache (with a broken entry re-parsed)."""

from __future__ import annotations

import json

from tests.imapserver.conftest import MESSAGE, ImapServer


def body(words: str) -> bytes:
    return b"Subject: " + words.encode() + b"\r\n\r\n" + words.encode() + b"\r\n"


async def test_select_keywords_unseen_and_flags_on_demand(imap: ImapServer) -> None:
    acc = imap.account
    await acc.deliver("Inbox", MESSAGE, flags=["\\Seen"])
    await acc.deliver("Inbox", MESSAGE, flags=["\\Seen", "$Forwarded"])
    await acc.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    lines = await tc.transact("a1 SELECT Inbox")
    assert b"* 3 EXISTS" in lines
    flags = next(x for x in lines if x.startswith(b"* FLAGS"))
    assert b"$forwarded" in flags
    assert b"* OK [UNSEEN 3] first unseen" in lines  # IMAP4rev1 (RFC 3501 §6.3.1)
    # STORE reports the flags of changed and unchanged messages alike (RFC 9051 §6.4.6).
    out = await tc.transact("a2 STORE 1:3 +FLAGS (\\Seen)")
    assert out == [
        b"* 1 FETCH (FLAGS (\\Seen))",
        b"* 2 FETCH (FLAGS (\\Seen $forwarded))",
        b"* 3 FETCH (FLAGS (\\Seen))",
    ]
    # A change by another session is reported once, at the next command.
    inbox = acc.get_mailbox("Inbox")
    assert inbox is not None
    await acc.store_flags(inbox.id, [2], "add", ["\\Flagged"])
    assert await tc.transact("a3 NOOP") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen $forwarded))"
    ]
    assert await tc.transact("a4 NOOP") == []
    # CONDSTORE: MODSEQ of messages this session has not been told about comes from the store.
    out = await tc.transact("a5 STORE 1 (UNCHANGEDSINCE 1000) +FLAGS (\\Seen)")
    assert out[0].startswith(b"* 1 FETCH (FLAGS (\\Seen) MODSEQ (")


async def test_changes_before_select_not_reported_again(imap: ImapServer) -> None:
    acc = imap.account
    await acc.deliver("Inbox", MESSAGE)
    inbox = acc.get_mailbox("Inbox")
    assert inbox is not None
    tc = await imap.transcript(login=True)
    await acc.store_flags(inbox.id, [1], "add", ["\\Answered"])
    lines = await tc.transact("a1 SELECT Inbox")
    assert not any(b"FETCH" in x for x in lines)
    assert await tc.transact("a2 FETCH 1 (FLAGS)") == [b"* 1 FETCH (FLAGS (\\Answered))"]
    assert await tc.transact("a3 NOOP") == []


async def test_search_narrowed_by_index_same_results(imap: ImapServer) -> None:
    acc = imap.account
    await acc.deliver("Inbox", body("alpha beta"))  # 1
    await acc.deliver("Inbox", body("gamma delta"))  # 2
    old = await acc.deliver("Inbox", body("alpha legacy"))  # 3
    await acc.deliver("Inbox", body("epsilon"), flags=["\\Flagged"])  # 4
    # Message 3 as if stored before the index existed: found by reading its file.
    acc._wconn.execute("UPDATE messages SET indexed = 0 WHERE id = ?", (old.id,))
    acc._wconn.execute("DELETE FROM fts WHERE rowid = ?", (old.id,))
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    assert await tc.transact("a2 SEARCH BODY alpha") == [b"* SEARCH 1 3"]
    assert await tc.transact("a3 SEARCH BODY alpha BODY legacy") == [b"* SEARCH 3"]
    assert await tc.transact("a4 SEARCH OR BODY gamma BODY legacy") == [b"* SEARCH 2 3"]
    assert await tc.transact("a5 SEARCH OR BODY gamma FLAGGED") == [b"* SEARCH 2 4"]
    assert await tc.transact("a6 SEARCH NOT BODY alpha") == [b"* SEARCH 2 4"]
    assert await tc.transact("a7 SEARCH 2:4 BODY alpha") == [b"* SEARCH 3"]
    assert await tc.transact("a8 UID SEARCH TEXT delta") == [b"* SEARCH 2"]


async def test_broken_parse_cache_entry_is_parsed_again(imap: ImapServer) -> None:
    msg = await imap.account.deliver("Inbox", MESSAGE)
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    first = await tc.transact("a2 FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    assert imap.account.get_parsed([msg.id])
    imap.account._wconn.execute(
        "UPDATE message_parsed SET data = ? WHERE message_id = ?",
        (
            '{"v":1,"envelope":{"x":1},"body":[{"q":2}],"bodystructure":{"y":1},"preview":""}',
            msg.id,
        ),
    )
    again = await tc.transact("a3 FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    assert again[0].split(b" (", 1)[1] == first[0].split(b" (", 1)[1]
    assert b'"afternoon meeting"' in again[0]


async def test_envelope_from_cache_wire_form_same_bytes(imap: ImapServer) -> None:
    """FETCH ENVELOPE from the cached wire form answers exactly what rendering the decoded
    envelope gives, with and without UTF8=ACCEPT; an envelope with UTF-8 is not kept in wire
    form (its rendering differs by mode), and an older entry without it still works."""
    acc = imap.account
    await acc.deliver(
        "Inbox",
        b'From: "Doe, Jane" <jane@example.org>\r\nTo: a@example.test, b@example.test\r\n'
        b'Subject: plan "q4" \\ notes\r\nMessage-ID: <e1@example.org>\r\n\r\nhi\r\n',
    )
    await acc.deliver(
        "Inbox",
        "From: Zoë <zoe@example.org>\r\nSubject: café\r\n\r\nhi\r\n".encode(),
    )
    tc = await imap.transcript(login=True)
    await tc.transact("a1 SELECT Inbox")
    first = await tc.transact("a2 FETCH 1:2 (ENVELOPE)")  # computed, then cached
    again = await tc.transact("a3 FETCH 1:2 (ENVELOPE)")  # from the cache
    assert again == first
    assert first[0].startswith(b'* 1 FETCH (ENVELOPE (NIL "plan \\"q4\\" \\\\ notes" ')
    inbox = acc.get_mailbox("Inbox")
    assert inbox is not None
    ids = [m.id for m in acc.list_messages(inbox.id)]
    entries = acc.get_parsed(ids)
    wires = [json.loads(entries[i]).get("envelope_wire") for i in ids]
    assert wires[0] is not None
    assert wires[0].startswith('(NIL "plan ')
    assert wires[1] is None  # UTF-8: a literal without UTF8=ACCEPT, quoted with it
    # An entry written before the wire form existed is decoded as before.
    old = json.loads(entries[ids[0]])
    del old["envelope_wire"]
    await acc.save_parsed({ids[0]: json.dumps(old)})
    assert await tc.transact("a4 FETCH 1:2 (ENVELOPE)") == first
    # With UTF8=ACCEPT the UTF-8 envelope is quoted instead of sent as literals.
    tc2 = await imap.transcript(login=True)
    await tc2.transact("b1 ENABLE UTF8=ACCEPT")
    await tc2.transact("b2 SELECT Inbox")
    utf8 = await tc2.transact("b3 FETCH 1:2 (ENVELOPE)")
    assert utf8[0] == first[0]
    assert '"café"'.encode() in utf8[1]
