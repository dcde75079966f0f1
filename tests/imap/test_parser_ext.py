"""Parsers of the extension commands: the RFC examples fed through the receiver in arbitrary
fragments, parameters and modifiers, and hypothesis garbage that may only raise ImapBad."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.imap import commands as c
from mox.imap.errors import ImapBad
from mox.imap.parser import parse_command
from mox.imap.receiver import NEED_DATA, RawCommand, Receiver

# Commands from the RFCs' examples (the tag and spacing as there).
RFC_EXAMPLES: list[tuple[bytes, c.Command]] = [
    # RFC 7162 §3.1.4.1 and §3.1.3
    (
        b"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
        c.Fetch(
            tag="s100",
            uid=True,
            seqset=c.SeqSet((c.SeqRange(1, None),)),
            items=(c.FetchSimple("FLAGS"),),
            changed_since=12345,
        ),
    ),
    (
        b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
        c.Store(
            tag="d105",
            seqset=c.SeqSet((c.SeqRange(7, 7), c.SeqRange(5, 5), c.SeqRange(9, 9))),
            op="add",
            silent=True,
            flags=("\\Deleted",),
            unchanged_since=320162338,
        ),
    ),
    # RFC 7162 §3.2.5
    (
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
        c.Select(
            tag="A02",
            mailbox="INBOX",
            qresync=c.QresyncParams(
                67890007,
                20050715194045000,
                c.SeqSet((c.SeqRange(41, 41), c.SeqRange(43, 211), c.SeqRange(214, 541))),
            ),
        ),
    ),
    (
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976:29979)))\r\n",
        c.Select(
            tag="B04",
            mailbox="INBOX",
            qresync=c.QresyncParams(
                67890007,
                90060115194045000,
                c.SeqSet((c.SeqRange(1, 29997),)),
                (
                    c.SeqSet(
                        (
                            c.SeqRange(5000, 5000),
                            c.SeqRange(7500, 7500),
                            c.SeqRange(9000, 9000),
                            c.SeqRange(9990, 9999),
                        )
                    ),
                    c.SeqSet(
                        (
                            c.SeqRange(15000, 15000),
                            c.SeqRange(22500, 22500),
                            c.SeqRange(27000, 27000),
                            c.SeqRange(29970, 29970),
                            c.SeqRange(29973, 29973),
                            c.SeqRange(29976, 29979),
                        )
                    ),
                ),
            ),
        ),
    ),
    (b"a SELECT INBOX (CONDSTORE)\r\n", c.Select(tag="a", mailbox="INBOX", condstore=True)),
    # RFC 6851 §3.3
    (
        b"a UID MOVE 42:69 foo\r\n",
        c.Move(tag="a", uid=True, seqset=c.SeqSet((c.SeqRange(42, 69),)), mailbox="foo"),
    ),
    # RFC 5256 §4
    (
        b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
        c.Sort(
            tag="A282",
            criteria=(("SUBJECT", False),),
            charset="UTF-8",
            key=c.SearchDate("SINCE", date(1994, 2, 1)),
        ),
    ),
    (
        b"A285 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
        c.Sort(
            tag="A285",
            criteria=(("SUBJECT", False), ("DATE", True)),
            charset="UTF-8",
            key=c.SearchAll(),
        ),
    ),
    (
        b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
        c.Thread(
            tag="A283",
            algorithm="ORDEREDSUBJECT",
            charset="UTF-8",
            key=c.SearchDate("SINCE", date(2000, 3, 5)),
        ),
    ),
    # RFC 5182 §2.4
    (
        b'A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        c.Search(
            tag="A282",
            key=c.SearchAnd(
                (
                    c.SearchFlag("\\Flagged"),
                    c.SearchDate("SINCE", date(1994, 2, 1)),
                    c.SearchNot(c.SearchHeader("From", "Smith")),
                )
            ),
            return_opts=("SAVE",),
        ),
    ),
    (
        b"A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n",
        c.Fetch(
            tag="A283",
            seqset=c.SeqSet((), saved=True),
            items=(
                c.FetchSimple("UID"),
                c.FetchSimple("INTERNALDATE"),
                c.FetchSimple("FLAGS"),
                c.FetchSimple("RFC822.HEADER"),
            ),
        ),
    ),
    # RFC 5464 §4.2.2 and §4.3
    (
        b'a GETMETADATA (DEPTH 1) "INBOX" "/private/filters/values"\r\n',
        c.GetMetadata(tag="a", mailbox="INBOX", entries=("/private/filters/values",), depth="1"),
    ),
    (
        b'a SETMETADATA INBOX (/private/comment "My new comment")\r\n',
        c.SetMetadata(tag="a", mailbox="INBOX", entries=(("/private/comment", b"My new comment"),)),
    ),
    # RFC 9208 §4.3.2, RFC 4978 §3
    (b"A003 GETQUOTAROOT INBOX\r\n", c.GetQuotaRoot(tag="A003", mailbox="INBOX")),
    (
        b'A001 SETQUOTA "" (STORAGE 512)\r\n',
        c.SetQuota(tag="A001", root="", limits=(("STORAGE", 512),)),
    ),
    (b"a COMPRESS DEFLATE\r\n", c.Compress(tag="a", mechanism="DEFLATE")),
    # RFC 7377 §2.2
    (
        b'tag1 ESEARCH IN (mailboxes "folder1" subtree-one "folder2") unseen\r\n',
        c.ESearch(
            tag="tag1",
            sources=(("MAILBOXES", ("folder1",)), ("SUBTREE-ONE", ("folder2",))),
            key=c.SearchFlag("\\Seen", set=False),
        ),
    ),
    # RFC 5465 §3.1 (first example)
    (
        b"a NOTIFY SET STATUS (selected MessageNew (uid body.peek[header.fields (from to "
        b"subject)]) MessageExpunge) (subtree Lists MessageNew)\r\n",
        c.Notify(tag="a", none=False, status=True, groups=()),
    ),
    # RFC 6154 §5.3 (CREATE-SPECIAL-USE)
    (
        b"t1 CREATE MySpecial (USE (\\Drafts))\r\n",
        c.Create(tag="t1", mailbox="MySpecial", special_use=("\\Drafts",)),
    ),
    # RFC 8514 §4.3, RFC 5032 §3
    (
        b"a UID SEARCH SAVEDBEFORE 1-Jan-2020 YOUNGER 3600\r\n",
        c.Search(
            tag="a",
            uid=True,
            key=c.SearchAnd(
                (c.SearchSaveDate("BEFORE", date(2020, 1, 1)), c.SearchWithin(False, 3600))
            ),
        ),
    ),
]


def _commands(data: bytes, sizes: list[int]) -> list[RawCommand]:
    r = Receiver()
    out: list[RawCommand] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        r.feed(data[pos : pos + n])
        pos += n
        for _ in range(100):
            ev = r.next_event()
            if ev is NEED_DATA:
                break
            if isinstance(ev, RawCommand):
                out.append(ev)
    return out


@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=10))
def test_rfc_examples_in_fragments(sizes: list[int]) -> None:
    data = b"".join(line for line, _ in RFC_EXAMPLES)
    raws = _commands(data, sizes)
    assert len(raws) == len(RFC_EXAMPLES)
    for raw, (_, expected) in zip(raws, RFC_EXAMPLES, strict=True):
        cmd = parse_command(raw)
        if isinstance(expected, c.Notify):
            # The NOTIFY example: check the structure rather than the whole value.
            assert isinstance(cmd, c.Notify)
            assert cmd.status
            assert [g.filter for g in cmd.groups] == ["SELECTED", "SUBTREE"]
            assert cmd.groups[0].events == ("MessageNew", "MessageExpunge")
            assert cmd.groups[1].mailboxes == ("Lists",)
        else:
            assert cmd == expected


def test_multiappend_binary_and_utf8_literals() -> None:
    # RFC 3502 §6.3.11 example shape, with a literal8 (RFC 3516) and UTF8 (RFC 6855).
    data = (
        b"A003 APPEND saved-messages (\\Seen) {3+}\r\none ~{3+}\r\nt\x00o"
        b' "7-Feb-1994 21:52:25 -0800" UTF8 (~{2+}\r\n\xc3\xa4)\r\n'
    )
    [raw] = _commands(data, [7])
    cmd = parse_command(raw)
    assert isinstance(cmd, c.Append)
    assert [(m.flags, m.data, m.binary) for m in cmd.messages] == [
        (("\\Seen",), b"one", False),
        ((), b"t\x00o", True),
        ((), b"\xc3\xa4", False),
    ]
    assert cmd.more[1].internal_date is not None


def test_replace_and_fetch_items() -> None:
    [raw] = _commands(b"a UID REPLACE 7 Drafts (\\Draft) {2+}\r\nhi\r\n", [100])
    cmd = parse_command(raw)
    assert isinstance(cmd, c.Replace)
    assert (cmd.uid, cmd.mailbox, cmd.message.flags, cmd.message.data) == (
        True,
        "Drafts",
        ("\\Draft",),
        b"hi",
    )
    fetch = parse_command(RawCommand((b"a FETCH 1 (PREVIEW (LAZY) SAVEDATE MODSEQ)",), ()))
    assert isinstance(fetch, c.Fetch)
    assert [i for i in fetch.items if isinstance(i, c.FetchSimple)] == [
        c.FetchSimple("PREVIEW"),
        c.FetchSimple("SAVEDATE"),
        c.FetchSimple("MODSEQ"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"a REPLACE 1:2 x {1+}",  # one message only
        b"a FETCH 1 FLAGS (VANISHED)",  # RFC 7162 §3.2.6: UID FETCH with CHANGEDSINCE only
        b"a UID FETCH 1 FLAGS (CHANGEDSINCE)",
        b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()",
        b"a SORT DATE UTF-8 ALL",
        b"a THREAD REFS UTF-8 ALL",
        b"a SELECT INBOX (QRESYNC (0 1))",
        b"a SELECT INBOX (FOO)",
        b"a GETMETADATA INBOX /vendor/x",
        b"a SETMETADATA INBOX (/private/x y)",
        b"a ESEARCH IN (nowhere) ALL",
        b"a ESEARCH RETURN (SAVE) ALL",
        b"a NOTIFY SET",
        b"a NOTIFY SET (personal (Bogus))",
        b"a CREATE x (USE (\\Nope))",
        b"a SEARCH OLDER 0",
        b"a COMPRESS",
    ],
)
def test_bad_extension_syntax(line: bytes) -> None:
    with pytest.raises(ImapBad):
        parse_command(RawCommand((line,), ()))


@given(
    st.lists(
        st.sampled_from(
            [
                b" ",
                b"(",
                b")",
                b"1",
                b"*",
                b"$",
                b":",
                b",",
                b'"',
                b"~",
                b"CHANGEDSINCE",
                b"VANISHED",
                b"UNCHANGEDSINCE",
                b"QRESYNC",
                b"CONDSTORE",
                b"MODSEQ",
                b"REVERSE",
                b"DATE",
                b"UTF-8",
                b"ALL",
                b"IN",
                b"personal",
                b"subtree",
                b"MessageNew",
                b"/private/x",
                b"DEPTH",
                b"USE",
                b"\\Drafts",
                b"RETURN",
                b"SAVE",
            ]
        ),
        max_size=30,
    ),
    st.sampled_from(
        [
            b"SELECT INBOX",
            b"UID FETCH 1",
            b"STORE 1",
            b"SORT",
            b"THREAD",
            b"ESEARCH",
            b"NOTIFY",
            b"GETMETADATA",
            b"SETMETADATA INBOX",
            b"CREATE x",
            b"UID MOVE",
            b"REPLACE 1 x",
            b"APPEND x",
            b"SETQUOTA",
        ]
    ),
)
def test_extension_garbage_raises_only_imapbad(tokens: list[bytes], command: bytes) -> None:
    try:
        parse_command(RawCommand((b"t " + command + b" " + b"".join(tokens),), ()))
    except ImapBad:
        pass
