"""Store additions for IMAP: full-text index, move with tombstones, junk flags, conditional flag
changes, changes since a modseq, parse cache, annotations, disk usage, REPLACE."""

from __future__ import annotations

import re
from email.header import decode_header, make_header

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mox.store import Account, Expunged, MessageAdded
from mox.store.changes import Change
from mox.store.fulltext import decode_value, extract_text
from mox.store.junkflags import DEFAULT_JUNK_FLAG_RULES, JunkFlagRules

QP = (
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Sch=F6ne Gr=FC=DFe\r\n"
)


def mid(acc: Account, name: str) -> int:
    mb = acc.get_mailbox(name)
    assert mb is not None
    return mb.id


def test_extract_text_decodes() -> None:
    headers, body = extract_text(QP)
    assert "grüsse" in headers  # encoded-word decoded, case-folded (ß -> ss)
    assert body.strip() == "schöne grüsse"  # casefold turns ß into ss
    headers, body = extract_text(b"no header here\r\n\r\nbody")
    assert "body" in body or "body" in headers  # malformed input never raises


_PIECES = ["=?", "?=", "?q?", "?b?", "utf-8", "a", " ", "\r\n\t", "é", "_", "=41"]


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
@settings(max_examples=300)
def test_decode_value_same_as_email_header(text: str) -> None:
    # decode_value skips email.header when there is no encoded-word: same text either way.
    try:
        expected = str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        expected = text
    except Exception as e:  # HeaderParseError: extract_text falls back to the raw text
        with pytest.raises(type(e)):
            decode_value(text)
        return
    assert decode_value(text) == expected


async def test_fulltext_index_lifecycle(acc: Account) -> None:
    inbox = mid(acc, "Inbox")
    m = await acc.deliver("Inbox", QP)
    # Indexed after the delivery's commit (with others delivered within INDEX_DELAY); until
    # then SEARCH reads the message itself.
    assert acc.unindexed_uids(inbox) == {m.uid}
    assert acc.fts_search(inbox, "SCHÖNE", text=False) == set()
    await acc.index_backlog()
    assert acc.fts_search(inbox, "SCHÖNE", text=False) == {m.uid}
    assert acc.fts_search(inbox, "GRÜSSE", text=False) == {m.uid}  # folded on both sides
    assert acc.fts_search(inbox, "iso-8859", text=False) == set()  # only in the header
    assert acc.fts_search(inbox, "iso-8859", text=True) == {m.uid}
    assert acc.fts_search(inbox, "ch", text=False) == {m.uid}  # short needle: instr
    assert acc.fts_search(inbox, "", text=False) is None
    assert acc.fts_search(inbox, 'a"b', text=False) == set()  # quotes are escaped
    assert acc.unindexed_uids(inbox) == set()
    [(_, copy_uid)] = await acc.copy_messages(inbox, [m.uid], "Archive")
    assert acc.fts_search(mid(acc, "Archive"), "schöne", text=False) == {copy_uid}
    await acc.store_flags(inbox, [m.uid], "add", ["\\Deleted"])
    await acc.expunge(inbox)
    assert acc.fts_search(inbox, "schöne", text=False) == set()
    rows = acc._rconn.execute("SELECT count(*) FROM fts").fetchone()[0]
    assert rows == 1  # the copy's entry only


async def test_move_tombstones_changes_and_junk(acc: Account) -> None:
    inbox, junk = mid(acc, "Inbox"), mid(acc, "Junk")
    seen: list[Change] = []
    acc.add_listener(seen.extend)
    a = await acc.deliver("Inbox", b"Subject: a\r\n\r\nalpha\r\n", flags=["$notjunk"])
    b = await acc.deliver("Inbox", b"Subject: b\r\n\r\nbeta\r\n")
    await acc.index_backlog()  # the move below keeps the index entry
    await acc.save_parsed({a.id: "cached-a"})
    before = acc.mailbox_status(inbox).highest_modseq
    seen.clear()
    pairs = await acc.move_messages(inbox, [a.uid], "Junk", junk_flags=DEFAULT_JUNK_FLAG_RULES)
    assert pairs == [(a.uid, 1)]
    assert seen == [MessageAdded(junk, 1), Expunged(inbox, (a.uid,))]
    [moved] = acc.list_messages(junk)
    assert moved.flags == {"$junk"}
    assert moved.path == a.path  # the file was handed over, not copied
    assert acc.read_message(moved) == b"Subject: a\r\n\r\nalpha\r\n"
    assert acc.get_parsed([moved.id]) == {moved.id: "cached-a"}
    assert acc.fts_search(junk, "alpha", text=False) == {1}
    changed, vanished = acc.changes_since(inbox, before)
    assert (changed, vanished) == ([], [a.uid])
    assert acc.mailbox_status(inbox).highest_modseq > before
    assert [m.uid for m in acc.list_messages(inbox)] == [b.uid]


def test_junk_rules() -> None:
    rules = DEFAULT_JUNK_FLAG_RULES
    assert rules.apply("Spam", frozenset({"$notjunk", "x"})) == {"$junk", "x"}
    assert rules.apply("Inbox", frozenset({"$junk"})) == frozenset()
    assert rules.apply("Archive", frozenset({"$junk"})) == {"$notjunk"}
    only = JunkFlagRules(notjunk=re.compile("^ham$"))
    assert only.apply("ham", frozenset({"$junk"})) == {"$notjunk"}
    assert only.apply("other", frozenset({"$junk"})) == {"$junk"}


async def test_conditional_store_and_replace(acc: Account) -> None:
    inbox = mid(acc, "Inbox")
    m1 = await acc.deliver("Inbox", b"Subject: 1\r\n\r\n1\r\n")
    m2 = await acc.deliver("Inbox", b"Subject: 2\r\n\r\n2\r\n")
    changed, modified = await acc.store_flags_conditional(
        inbox, [m1.uid, m2.uid], "add", ["\\Seen"], m1.modseq
    )
    assert [m.uid for m in changed] == [m1.uid]
    assert modified == [m2.uid]
    new = await acc.deliver("Drafts", b"Subject: 2b\r\n\r\n2b\r\n", replace=(inbox, m2.uid))
    assert [m.uid for m in acc.list_messages(inbox)] == [m1.uid]
    assert acc.changes_since(inbox, new.modseq - 1)[1] == [m2.uid]
    assert acc.disk_usage() == m1.size + new.size


async def test_annotations(acc: Account) -> None:
    inbox = mid(acc, "Inbox")
    await acc.set_annotations(
        inbox, [("/private/comment", b"hi", True), ("/shared/b", b"\0", False)]
    )
    await acc.set_annotations(0, [("/private/server", b"s", True)])
    assert acc.get_annotations(inbox) == {
        "/private/comment": (b"hi", True),
        "/shared/b": (b"\0", False),
    }
    await acc.set_annotations(inbox, [("/private/comment", None, True)])
    assert list(acc.get_annotations(inbox)) == ["/shared/b"]
    await acc.create_mailbox("Tmp")
    tmp = mid(acc, "Tmp")
    await acc.set_annotations(tmp, [("/private/x", b"y", True)])
    await acc.delete_mailbox("Tmp")
    assert acc.get_annotations(tmp) == {}
    assert acc.get_annotations(0) == {"/private/server": (b"s", True)}
