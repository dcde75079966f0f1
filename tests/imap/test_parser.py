"""Command parser: RFC 9051 examples, edge cases, and ImapBad for bad syntax."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.imap import commands as c
from mox.imap.errors import ImapBad
from mox.imap.parser import PARSERS, UID_PARSERS, parse_command, parse_tag
from mox.imap.receiver import RawCommand
from mox.imap.state import ALL_COMMANDS


def parse(line: bytes, *literals: bytes, utf8: bool = False) -> c.Command:
    chunks = tuple(line.split(b"\x00"))  # "\x00" marks where a literal goes in these tests
    return parse_command(RawCommand(chunks, literals), utf8=utf8)


def test_every_state_table_command_has_a_parser() -> None:
    names = set(PARSERS) | {f"UID {n}" for n in UID_PARSERS}
    assert names == ALL_COMMANDS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a1 CAPABILITY", c.Capability(tag="a1")),
        (b"a1 noop", c.Noop(tag="a1")),
        (b"A023 LOGOUT", c.Logout(tag="A023")),
        (b"a STARTTLS", c.StartTls(tag="a")),
        (b"a001 login mrc secret", c.Login(tag="a001", username="mrc", password="secret")),
        (b'a LOGIN "fred" "a \\"b\\\\"', c.Login(tag="a", username="fred", password='a "b\\')),
        (
            b"a ENABLE IMAP4rev2 utf8=accept",
            c.Enable(tag="a", capabilities=("IMAP4REV2", "UTF8=ACCEPT")),
        ),
        (b"a ID NIL", c.Id(tag="a", params=None)),
        (
            b'a ID ("name" "sodr" "version" NIL)',
            c.Id(tag="a", params=(("name", "sodr"), ("version", None))),
        ),
        (b"a NAMESPACE", c.NamespaceCmd(tag="a")),
        (b"a002 select inbox", c.Select(tag="a002", mailbox="inbox")),
        (b"a EXAMINE blurdybloop", c.Select(tag="a", mailbox="blurdybloop", readonly=True)),
        (b"a CREATE owatagusiam/", c.Create(tag="a", mailbox="owatagusiam/")),
        (b"a DELETE blurdybloop", c.Delete(tag="a", mailbox="blurdybloop")),
        (b"a RENAME blurdybloop sarasoop", c.Rename(tag="a", old="blurdybloop", new="sarasoop")),
        (b"a SUBSCRIBE #news.comp.mail.mime", c.Subscribe(tag="a", mailbox="#news.comp.mail.mime")),
        (b"a UNSUBSCRIBE x", c.Unsubscribe(tag="a", mailbox="x")),
        (
            b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
            c.Status(tag="A042", mailbox="blurdybloop", items=("UIDNEXT", "MESSAGES")),
        ),
        (b'A101 LIST "" ""', c.ListCmd(tag="A101", reference="", patterns=("",))),
        (
            b"A102 LIST #news.comp.mail.misc %",
            c.ListCmd(tag="A102", reference="#news.comp.mail.misc", patterns=("%",)),
        ),
        (b'a LIST "" *', c.ListCmd(tag="a", reference="", patterns=("*",))),
        (
            b'a LIST (SUBSCRIBED) "" ("INBOX" "Drafts") RETURN (CHILDREN STATUS (MESSAGES))',
            c.ListCmd(
                tag="a",
                reference="",
                patterns=("INBOX", "Drafts"),
                select_opts=frozenset({"SUBSCRIBED"}),
                return_opts=frozenset({"CHILDREN", "STATUS"}),
                status_items=("MESSAGES",),
            ),
        ),
        (
            b'a LSUB "#news." "comp.mail.*"',
            c.Lsub(tag="a", reference="#news.", pattern="comp.mail.*"),
        ),
        (b"a IDLE", c.Idle(tag="a")),
        (b"a CHECK", c.Check(tag="a")),
        (b"a CLOSE", c.Close(tag="a")),
        (b"a UNSELECT", c.Unselect(tag="a")),
        (b"a EXPUNGE", c.Expunge(tag="a")),
        (b"a UID EXPUNGE 3000:3002", c.Expunge(tag="a", uids=c.SeqSet((c.SeqRange(3000, 3002),)))),
        (b"a AUTHENTICATE PLAIN", c.Authenticate(tag="a", mechanism="PLAIN")),
        (
            b"a AUTHENTICATE plain =",
            c.Authenticate(tag="a", mechanism="PLAIN", initial_response=b""),
        ),
        (
            b"a AUTHENTICATE PLAIN AGZyZWQAYmFy",
            c.Authenticate(tag="a", mechanism="PLAIN", initial_response=b"AGZyZWQAYmFy"),
        ),
        (
            b"a COPY 2:4 MEETING",
            c.Copy(tag="a", seqset=c.SeqSet((c.SeqRange(2, 4),)), mailbox="MEETING"),
        ),
        (
            b"a UID COPY 1,* Trash",
            c.Copy(
                tag="a",
                uid=True,
                seqset=c.SeqSet((c.SeqRange(1, 1), c.SeqRange(None, None))),
                mailbox="Trash",
            ),
        ),
    ],
)
def test_parse_ok(line: bytes, expected: c.Command) -> None:
    assert parse(line) == expected


def test_login_with_literals() -> None:
    cmd = parse(b"A001 LOGIN \x00 \x00", b"FRED FOOBAR", b"fat man")
    assert cmd == c.Login(tag="A001", username="FRED FOOBAR", password="fat man")


def test_append_rfc_example() -> None:
    msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\r\nHello\r\n"
    cmd = parse(b'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" \x00', msg)
    assert cmd == c.Append(
        tag="A003",
        mailbox="saved-messages",
        flags=("\\Seen",),
        internal_date=datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(-timedelta(hours=8))),
        message=msg,
    )


def test_append_without_flags_or_date() -> None:
    cmd = parse(b"a APPEND Inbox \x00", b"x")
    assert cmd == c.Append(tag="a", mailbox="Inbox", message=b"x")


def test_fetch_macros_expand() -> None:
    cmd = parse(b"a003 fetch 12 full")
    assert isinstance(cmd, c.Fetch)
    assert cmd.items == (
        c.FetchSimple("FLAGS"),
        c.FetchSimple("INTERNALDATE"),
        c.FetchSimple("RFC822.SIZE"),
        c.FetchSimple("ENVELOPE"),
        c.FetchSimple("BODY"),
    )
    fast = parse(b"a FETCH 1 FAST")
    assert isinstance(fast, c.Fetch)
    assert len(fast.items) == 3
    all_ = parse(b"a FETCH 1 ALL")
    assert isinstance(all_, c.Fetch)
    assert c.FetchSimple("ENVELOPE") in all_.items


def test_fetch_body_sections() -> None:
    cmd = parse(
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)] BODY.PEEK[1.2.MIME] "
        b"BODY[]<0.2048> BINARY.PEEK[1]<5.10> BINARY.SIZE[2] BODY[3.TEXT] "
        b"BODY[4.HEADER.FIELDS.NOT (X)])"
    )
    assert isinstance(cmd, c.Fetch)
    assert cmd.seqset == c.SeqSet((c.SeqRange(2, 4),))
    assert cmd.items == (
        c.FetchSimple("FLAGS"),
        c.FetchBody(c.Section((), "HEADER.FIELDS", ("DATE", "FROM"))),
        c.FetchBody(c.Section((1, 2), "MIME"), peek=True),
        c.FetchBody(c.Section(), partial=(0, 2048)),
        c.FetchBody(c.Section((1,)), peek=True, partial=(5, 10), binary=True),
        c.FetchBinarySize((2,)),
        c.FetchBody(c.Section((3,), "TEXT")),
        c.FetchBody(c.Section((4,), "HEADER.FIELDS.NOT", ("X",))),
    )
    assert str(cmd.items[1].section) == "HEADER.FIELDS (DATE FROM)"


def test_fetch_single_attribute_and_body_without_section() -> None:
    assert parse(b"a FETCH * BODY") == c.Fetch(
        tag="a", seqset=c.SeqSet((c.SeqRange(None, None),)), items=(c.FetchSimple("BODY"),)
    )
    cmd = parse(b"a UID FETCH 1:* BODY[]")
    assert isinstance(cmd, c.Fetch)
    assert cmd.uid
    assert cmd.name == "UID FETCH"
    assert cmd.items == (c.FetchBody(c.Section()),)


def test_store_forms() -> None:
    cmd = parse(b"A003 STORE 2:4 +FLAGS (\\Deleted)")
    assert cmd == c.Store(
        tag="A003", seqset=c.SeqSet((c.SeqRange(2, 4),)), op="add", flags=("\\Deleted",)
    )
    cmd2 = parse(b"a UID STORE 5 -FLAGS.SILENT \\SEEN $Junk")
    assert cmd2 == c.Store(
        tag="a",
        uid=True,
        seqset=c.SeqSet((c.SeqRange(5, 5),)),
        op="remove",
        silent=True,
        flags=("\\Seen", "$junk"),
    )
    cmd3 = parse(b"a STORE 1 FLAGS ()")
    assert cmd3 == c.Store(tag="a", seqset=c.SeqSet((c.SeqRange(1, 1),)), op="set", flags=())


def test_search_rfc_examples() -> None:
    cmd = parse(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert cmd == c.Search(
        tag="A282",
        return_opts=("MIN", "COUNT"),
        key=c.SearchAnd(
            (
                c.SearchFlag("\\Flagged"),
                c.SearchDate("SINCE", date(1994, 2, 1)),
                c.SearchNot(c.SearchHeader("From", "Smith")),
            )
        ),
    )
    cmd2 = parse(b"A285 SEARCH CHARSET UTF-8 TEXT \x00", "Joe’s".encode())
    assert cmd2 == c.Search(tag="A285", charset="UTF-8", key=c.SearchBody("Joe’s", text=True))


def test_search_nesting_and_sets() -> None:
    cmd = parse(
        b'a UID SEARCH OR (SEEN UNDELETED) NOT 2:4,* UID 1:* HEADER X-Foo "bar" LARGER 10 '
        b'SMALLER 20 KEYWORD $Forwarded UNKEYWORD x SENTON "3-Mar-2021" BEFORE 04-Apr-2022 '
        b"ANSWERED DRAFT DELETED UNANSWERED UNDRAFT UNFLAGGED UNSEEN ALL NEW OLD RECENT "
        b"BODY x TO y CC z BCC w SUBJECT s SENTSINCE 1-Jan-2000 SENTBEFORE 1-Jan-2000 ON 1-Jan-2000"
    )
    assert isinstance(cmd, c.Search)
    assert cmd.uid
    assert isinstance(cmd.key, c.SearchAnd)
    keys = cmd.key.keys
    assert keys[0] == c.SearchOr(
        c.SearchAnd((c.SearchFlag("\\Seen"), c.SearchFlag("\\Deleted", set=False))),
        c.SearchNot(c.SearchSeq(c.SeqSet((c.SeqRange(2, 4), c.SeqRange(None, None))))),
    )
    assert keys[1] == c.SearchUid(c.SeqSet((c.SeqRange(1, None),)))
    assert keys[2] == c.SearchHeader("X-Foo", "bar")
    assert keys[5] == c.SearchFlag("$forwarded")
    assert keys[7] == c.SearchDate("ON", date(2021, 3, 3), sent=True)
    assert len(keys) == 28


def test_mailbox_names_modified_utf7() -> None:
    # RFC 3501 §5.1.3 example.
    cmd = parse(b"a SELECT ~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    assert cmd == c.Select(tag="a", mailbox="~peter/mail/台北/日本語")
    # With UTF8=ACCEPT/IMAP4rev2 names are UTF-8 and "&" is just a character.
    cmd2 = parse('a CREATE "Tom & Jerry/台北"'.encode(), utf8=True)
    assert cmd2 == c.Create(tag="a", mailbox="Tom & Jerry/台北")


def test_raw_utf8_mailbox_accepted_from_non_utf8_client() -> None:
    assert parse('a CREATE "Ä"'.encode()) == c.Create(tag="a", mailbox="Ä")


def test_seqset_helpers() -> None:
    s = c.SeqSet((c.SeqRange(5, 3), c.SeqRange(None, None), c.SeqRange(4, 4)))
    assert list(s.expand(7)) == [3, 4, 5, 7]
    assert s.contains(7, 7)
    assert not s.contains(6, 7)
    assert str(s) == "5:3,*,4"
    assert c.compact_set([5, 1, 2, 3, 9]) == "1:3,5,9"
    assert c.uid_set_in_order([4, 5, 6, 2]) == "4:6,2"


def test_parse_tag() -> None:
    assert parse_tag(RawCommand((b"abc NOOP",), ())) == "abc"
    assert parse_tag(RawCommand((b"+abc NOOP",), ())) is None
    assert parse_tag(RawCommand((b"ab(c NOOP",), ())) is None
    assert parse_tag(RawCommand((b"",), ())) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "tag"),
        (b"a1", "space"),
        (b"* NOOP", "tag"),
        (b"a1 FOO", "unknown command FOO"),
        (b"a1 NOOP extra", "unexpected data"),
        (b"a1 NOOP ", "unexpected data"),
        (b"a1  NOOP", "atom"),
        (b"a1 UID NOOP", "unknown UID command"),
        (b"a1 LOGIN user", "space"),
        (b'a1 LOGIN "user pass', "unterminated"),
        (b'a1 LOGIN "us\\er" x', "escape"),
        (b"a1 SELECT", "space"),
        (b"a1 SELECT &Jjo", "modified UTF-7"),
        (b"a1 SELECT a&AGE-", "modified UTF-7"),  # encodes printable "a"
        (b"a1 FETCH 0 FLAGS", "invalid number in sequence set"),
        (b"a1 FETCH 1:x FLAGS", "sequence set"),
        (b"a1 FETCH 1$ FLAGS", "sequence set"),
        (b"a1 FETCH 4294967296 FLAGS", "number"),
        (b"a1 FETCH 1 (FLAGS", "space"),
        (b"a1 FETCH 1 (FAST)", "unknown fetch attribute FAST"),
        (b"a1 FETCH 1 BODY[FOO]", "invalid section"),
        (b"a1 FETCH 1 BODY[MIME]", "MIME needs a part"),
        (b"a1 FETCH 1 BODY[1]<0.0>", "partial"),
        (b"a1 FETCH 1 BODY[1]<x>", "partial"),
        (b"a1 FETCH 1 BINARY[HEADER]", "part numbers"),
        (b"a1 STORE 1 FLAGS (\\Foo)", "unknown system flag"),
        (b"a1 STORE 1 FLAGS (\\Recent)", "unknown system flag"),
        (b"a1 STORE 1 XFLAGS (\\Seen)", "FLAGS"),
        (b"a1 SEARCH", "space"),
        (b"a1 SEARCH FOO", "unknown search key"),
        (b"a1 SEARCH SINCE 31-Feb-2020", "invalid date"),
        (b"a1 SEARCH SINCE 1-Foo-2020", "invalid month"),
        (b"a1 SEARCH RETURN (PARTIAL) ALL", "return option"),
        (b"a1 SEARCH " + b"NOT " * 100 + b"ALL", "nested too deeply"),
        (b"a1 SEARCH " + b"(" * 100 + b"ALL" + b")" * 100, "nested too deeply"),
        (b"a1 STATUS x (FOO)", "unknown status item"),
        (b"a1 LIST (FOO) x y", "selection option"),
        (b"a1 LIST (RECURSIVEMATCH) x y", "base selection option"),
        (b"a1 LIST x y RETURN (FOO)", "return option"),
        (b"a1 ENABLE", "at least one"),
        (b"a1 APPEND x (\\Seen) {3}", "literal"),
        (b'a1 APPEND x "bad date" \x00', "date-time"),
        (b'a1 APPEND x "31-Feb-2020 10:00:00 +0000" \x00', "date-time"),
        (b"a1 AUTHENTICATE PLAIN !!", "initial response"),
        (b'a1 ID ("a")', "space"),
        (b"a1 SELECT \xff", "mailbox name"),
    ],
)
def test_parse_bad(line: bytes, message: str) -> None:
    literals = (b"x",) * line.count(b"\x00")
    with pytest.raises(ImapBad, match=message):
        parse(line, *literals)


def test_parse_date_time_zone() -> None:
    cmd = parse(b'a APPEND x "17-Jul-1996 02:44:25 +0000" \x00', b"m")
    assert isinstance(cmd, c.Append)
    assert cmd.internal_date == datetime(1996, 7, 17, 2, 44, 25, tzinfo=UTC)


@given(st.binary(max_size=200))
def test_random_command_text_raises_only_imapbad(data: bytes) -> None:
    try:
        parse_command(RawCommand((b"t " + data.replace(b"\n", b" "),), ()))
    except ImapBad:
        pass


@given(
    st.lists(
        st.sampled_from(
            [
                b"a",
                b" ",
                b"(",
                b")",
                b"[",
                b"]",
                b"<",
                b">",
                b".",
                b"1",
                b"*",
                b":",
                b",",
                b'"',
                b"\\",
                b"NOT",
                b"OR",
                b"BODY",
                b"PEEK",
                b"HEADER",
                b"FIELDS",
                b"FLAGS",
                b"UID",
                b"SEARCH",
                b"FETCH",
                b"STORE",
                b"+",
                b"-",
                b"{",
                b"}",
                b"ALL",
                b"~",
                b"SINCE",
                b"1-Jan-2000",
                b"\xc3\xa4",
                b"&",
                b"LIST",
                b"RETURN",
                b"STATUS",
            ]
        ),
        max_size=40,
    ),
    st.lists(st.binary(max_size=5), max_size=3),
)
def test_structured_garbage_raises_only_imapbad(tokens: list[bytes], literals: list[bytes]) -> None:
    text = b"".join(tokens)
    chunks = [text] + [b" "] * len(literals)
    try:
        parse_command(RawCommand((b"t " + chunks[0], *chunks[1:]), tuple(literals)))
    except ImapBad:
        pass
