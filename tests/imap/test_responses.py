"""Response serialisation (RFC 9051 §7, §9)."""

from __future__ import annotations

import pytest

from mox.imap import responses as r


@pytest.mark.parametrize(
    ("response", "wire"),
    [
        (r.Tagged("a1", "OK", "LOGIN completed"), b"a1 OK LOGIN completed\r\n"),
        (
            r.Tagged("a2", "NO", "no such mailbox", r.ResponseCode("TRYCREATE")),
            b"a2 NO [TRYCREATE] no such mailbox\r\n",
        ),
        (
            r.Tagged("A3", "OK", "done", r.ResponseCode("APPENDUID", (38505, 3955))),
            b"A3 OK [APPENDUID 38505 3955] done\r\n",
        ),
        (
            r.Untagged(
                "OK", "Limited", r.ResponseCode("PERMANENTFLAGS", (r.atoms(["\\Deleted", "\\*"]),))
            ),
            b"* OK [PERMANENTFLAGS (\\Deleted \\*)] Limited\r\n",
        ),
        (r.Untagged("BYE", "bye\r\nnow"), b"* BYE bye  now\r\n"),
        (r.Untagged("BAD", ""), b"* BAD .\r\n"),
        (r.Continuation(), b"+ Ready\r\n"),
        (r.Continuation(data=b""), b"+ \r\n"),
        (r.Continuation(data=b"\x00abc"), b"+ AGFiYw==\r\n"),
        (r.Exists(23), b"* 23 EXISTS\r\n"),
        (r.Expunge(3), b"* 3 EXPUNGE\r\n"),
        (r.Recent(0), b"* 0 RECENT\r\n"),
        (r.Flags(("\\Seen", "$junk")), b"* FLAGS (\\Seen $junk)\r\n"),
        (r.Capability(("IMAP4rev2", "IDLE")), b"* CAPABILITY IMAP4rev2 IDLE\r\n"),
        (r.Enabled(()), b"* ENABLED\r\n"),
        (r.SearchData((2, 3, 6)), b"* SEARCH 2 3 6\r\n"),
        (r.SearchData(()), b"* SEARCH\r\n"),
        (
            r.ESearchData("A282", True, (("MIN", 2), ("ALL", "2:4,7"))),
            b'* ESEARCH (TAG "A282") UID MIN 2 ALL 2:4,7\r\n',
        ),
        (r.Namespace(), b'* NAMESPACE (("" "/")) NIL NIL\r\n'),
        (r.IdData((("name", "mox"),)), b'* ID ("name" "mox")\r\n'),
        (r.IdData(()), b"* ID NIL\r\n"),
        (
            r.ListData(("\\HasNoChildren", "\\Sent"), "/", "Sent"),
            b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
        ),
        (r.ListData(("\\Noselect",), "/", "", kind="LSUB"), b'* LSUB (\\Noselect) "/" ""\r\n'),
        (
            r.StatusData("blurdybloop", (("MESSAGES", 231), ("UIDNEXT", 44292))),
            b'* STATUS "blurdybloop" (MESSAGES 231 UIDNEXT 44292)\r\n',
        ),
        (
            r.Fetch(12, (("FLAGS", r.atoms(["\\Seen"])), ("UID", 4827313), ("X", r.NIL))),
            b"* 12 FETCH (FLAGS (\\Seen) UID 4827313 X NIL)\r\n",
        ),
    ],
)
def test_serialize(response: r.Response, wire: bytes) -> None:
    assert r.serialize(response) == wire


def test_strings_quoted_or_literal() -> None:
    def one(v: r.Value, utf8: bool = False) -> bytes:
        return r.serialize(r.Fetch(1, (("X", v),)), utf8=utf8)[len(b"* 1 FETCH (X ") : -3]

    assert one(r.Str("plain")) == b'"plain"'
    assert one(r.Str('say "hi" \\o/')) == b'"say \\"hi\\" \\\\o/"'
    assert one(r.Str("a\r\nb")) == b"{4}\r\na\r\nb"
    assert one(r.Str("Grüße")) == b"{7}\r\nGr\xc3\xbc\xc3\x9fe"  # 8-bit: literal for rev1 clients
    assert one(r.Str("Grüße"), utf8=True) == '"Grüße"'.encode()
    assert one(r.Str(b"\xff\xfe"), utf8=True) == b"{2}\r\n\xff\xfe"  # not UTF-8
    assert one(r.Str(b"x" * 2000))[:8] == b"{2000}\r\n"
    assert one(r.Literal(b"abc")) == b"{3}\r\nabc"
    assert one(r.Literal(b"a\x00c", binary=True)) == b"~{3}\r\na\x00c"
    assert one(r.nstring(None)) == b"NIL"
    assert one(r.ListValue((r.Str(""), 1, r.NIL, r.ListValue(())))) == b'("" 1 NIL ())'


def test_mailbox_names_follow_utf8_mode() -> None:
    resp = r.ListData((), "/", "~peter/mail/台北/日本語")
    assert r.serialize(resp) == b'* LIST () "/" "~peter/mail/&U,BTFw-/&ZeVnLIqe-"\r\n'
    assert r.serialize(resp, utf8=True) == '* LIST () "/" "~peter/mail/台北/日本語"\r\n'.encode()


def test_bool_is_rejected() -> None:
    with pytest.raises(TypeError):
        r.serialize(r.Fetch(1, (("X", True),)))
