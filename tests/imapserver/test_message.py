"""MIME structure, ENVELOPE and BODYSTRUCTURE from message bytes (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mox.imap.responses import Fetch, serialize
from mox.imapserver.message import (
    Address,
    body_structure,
    decode_transfer_encoding,
    envelope,
    find_part,
    parse_address_list,
    parse_part,
    select_header_fields,
    split_header,
    text_parts,
)


def render(value: object) -> bytes:
    return serialize(Fetch(1, (("X", value),)))[len(b"* 1 FETCH (X ") : -3]  # type: ignore[arg-type]


def mime(ctype: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"Content-Type: " + ctype.encode() + b"\r\n" + extra + b"\r\n" + body


def multipart(sub: str, boundary: str, *parts: bytes) -> bytes:
    b = boundary.encode()
    body = b"".join(b"--" + b + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + b + b"--\r\n"
    return mime(f'multipart/{sub}; boundary="{boundary}"', body)


# The structure of the RFC 9051 §6.4.5 section numbering example.
RFC_EXAMPLE = b"Subject: rfc example\r\n" + multipart(
    "mixed",
    "outer",
    mime("text/plain", b"part 1"),
    mime("application/octet-stream", b"part 2"),
    mime(
        "message/rfc822",
        b"Subject: three\r\n"
        + multipart("mixed", "m3", mime("text/plain", b"3.1"), mime("application/x-y", b"3.2")),
    ),
    multipart(
        "mixed",
        "m4",
        mime("image/gif", b"4.1"),
        mime(
            "message/rfc822",
            b"Subject: four-two\r\n"
            + multipart(
                "mixed",
                "m42",
                mime("text/plain", b"4.2.1"),
                multipart(
                    "alternative",
                    "m422",
                    mime("text/plain", b"4.2.2.1"),
                    mime("text/richtext", b"4.2.2.2"),
                ),
            ),
        ),
    ),
)


@pytest.mark.parametrize(
    ("path", "ctype", "body"),
    [
        ((1,), ("text", "plain"), b"part 1"),
        ((2,), ("application", "octet-stream"), b"part 2"),
        ((3,), ("message", "rfc822"), None),
        ((3, 1), ("text", "plain"), b"3.1"),
        ((3, 2), ("application", "x-y"), b"3.2"),
        ((4,), ("multipart", "mixed"), None),
        ((4, 1), ("image", "gif"), b"4.1"),
        ((4, 2), ("message", "rfc822"), None),
        ((4, 2, 1), ("text", "plain"), b"4.2.1"),
        ((4, 2, 2), ("multipart", "alternative"), None),
        ((4, 2, 2, 1), ("text", "plain"), b"4.2.2.1"),
        ((4, 2, 2, 2), ("text", "richtext"), b"4.2.2.2"),
    ],
)
def test_rfc9051_section_numbering(
    path: tuple[int, ...], ctype: tuple[str, str], body: bytes | None
) -> None:
    root = parse_part(RFC_EXAMPLE)
    part = find_part(root, path)
    assert part is not None
    assert part.content_type == ctype
    if body is not None:
        assert part.body == body


def test_missing_parts() -> None:
    root = parse_part(RFC_EXAMPLE)
    assert find_part(root, (5,)) is None
    assert find_part(root, (1, 1)) is None
    assert find_part(root, (4, 2, 2, 3)) is None
    assert find_part(root, ()) is root


def test_non_multipart_message_has_part_one() -> None:
    root = parse_part(b"Subject: x\r\n\r\nbody\r\n")
    part = find_part(root, (1,))
    assert part is root
    assert part.body == b"body\r\n"
    assert find_part(root, (2,)) is None


def test_encapsulated_non_multipart() -> None:
    root = parse_part(mime("message/rfc822", b"Subject: in\r\n\r\ninner text"))
    inner = find_part(root, (1, 1))
    assert inner is not None
    assert inner.body == b"inner text"


@pytest.mark.parametrize(
    ("data", "header", "body"),
    [
        (b"A: b\r\n\r\nbody", b"A: b\r\n\r\n", b"body"),
        (b"A: b\n\nbody", b"A: b\n\n", b"body"),
        (b"A: b\r\n", b"A: b\r\n", b""),
        (b"\r\nbody", b"\r\n", b"body"),
        (b"A: b\r\n\nbody", b"A: b\r\n\n", b"body"),
    ],
)
def test_split_header(data: bytes, header: bytes, body: bytes) -> None:
    assert split_header(data) == (header, body)


def test_multipart_edge_cases() -> None:
    # Preamble and epilogue are not parts; the CRLF before a delimiter belongs to it.
    root = parse_part(
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\npre\r\n--x\r\n\r\na\r\n\r\n--x--\r\npost"
    )
    assert [p.body for p in root.children] == [b"a\r\n"]
    # No closing delimiter: the last part runs to the end.
    root2 = parse_part(
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\n\r\ntwo"
    )
    assert [p.body for p in root2.children] == [b"one", b"two"]
    # No boundary parameter, or no parts: not a multipart; described as text/plain.
    root3 = parse_part(b"Content-Type: multipart/mixed\r\n\r\njust text")
    assert not root3.multipart
    assert render(body_structure(root3)).startswith(b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 9 1')
    # multipart/digest parts default to message/rfc822 (RFC 2046 §5.1.5).
    digest = parse_part(
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: a\r\n\r\nA\r\n--d--"
    )
    assert digest.children[0].content_type == ("message", "rfc822")
    assert digest.children[0].message is not None


def test_header_fields() -> None:
    header = b"Subject: one\r\n two\r\nFrom: a@b\r\nX-Other: y\r\nsubject: again\r\n\r\n"
    assert select_header_fields(header, ("SUBJECT",), exclude=False) == (
        b"Subject: one\r\n two\r\nsubject: again\r\n\r\n"
    )
    assert select_header_fields(header, ("subject", "from"), exclude=True) == b"X-Other: y\r\n\r\n"
    assert select_header_fields(header, ("none",), exclude=False) == b"\r\n"


def test_envelope() -> None:
    msg = (
        b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
        b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
        b"From: Terry Gray <gray@cac.washington.edu>\r\n"
        b"To: imap@cac.washington.edu\r\n"
        b"Cc: minutes@CNRI.Reston.VA.US,\r\n  John Klensin <KLENSIN@MIT.EDU>\r\n"
        b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
        b"\r\nbody"
    )
    # RFC 9051 §6.4.5 FETCH example (with the addresses of the example).
    assert render(envelope(parse_part(msg))) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US") ("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_envelope_sender_reply_to_and_8bit() -> None:
    msg = "From: a@b\r\nSender: s@b\r\nReply-To:\r\nSubject: Grüße\r\n\r\n".encode()
    out = render(envelope(parse_part(msg)))
    assert out == (
        b'(NIL {7}\r\nGr\xc3\xbc\xc3\x9fe ((NIL NIL "a" "b")) ((NIL NIL "s" "b")) '
        b'((NIL NIL "a" "b")) NIL NIL NIL NIL NIL)'
    )
    assert render(envelope(parse_part(b"\r\n"))) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@b", [Address(None, None, "a", "b")]),
        ('"Smith, J." <j@x.org>', [Address("Smith, J.", None, "j", "x.org")]),
        ("J. R. Doe <jr@y>", [Address("J. R. Doe", None, "jr", "y")]),
        ("x@y (comment)", [Address(None, None, "x", "y")]),
        ("<@r1,@r2:u@h>", [Address(None, "@r1,@r2", "u", "h")]),
        ("first.last@[192.0.2.1]", [Address(None, None, "first.last", "[192.0.2.1]")]),
        ("localonly", [Address(None, None, "localonly", "")]),
        (
            "undisclosed-recipients:;",
            [Address(None, None, "undisclosed-recipients", None), Address(None, None, None, None)],
        ),
        (
            "team: a@b, C <c@d>;, e@f",
            [
                Address(None, None, "team", None),
                Address(None, None, "a", "b"),
                Address("C", None, "c", "d"),
                Address(None, None, None, None),
                Address(None, None, "e", "f"),
            ],
        ),
        ("", []),
        (",,", []),
    ],
)
def test_parse_address_list(text: str, expected: list[Address]) -> None:
    assert parse_address_list(text) == expected


def test_bodystructure_details() -> None:
    msg = (
        b'Content-Type: text/html; charset="iso-8859-1"\r\n'
        b"Content-ID: <id1>\r\n"
        b"Content-Description: desc\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"Content-Disposition: inline; filename*=utf-8''na%C3%AFve.html\r\n"
        b"Content-Language: en, de\r\n"
        b"Content-Location: http://example.org/x\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"\r\n"
        b"<p>one</p>\r\n<p>two</p>"
    )
    root = parse_part(msg)
    assert render(body_structure(root)) == (
        b'("TEXT" "HTML" ("CHARSET" "iso-8859-1") "<id1>" "desc" "8BIT" 22 2 '
        b'"Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("FILENAME" {11}\r\nna\xc3\xafve.html)) ("en" "de") '
        b'"http://example.org/x")'
    )
    assert render(body_structure(root, extensible=False)) == (
        b'("TEXT" "HTML" ("CHARSET" "iso-8859-1") "<id1>" "desc" "8BIT" 22 2)'
    )


def test_decode_transfer_encoding() -> None:
    b64 = parse_part(b"Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n")
    assert decode_transfer_encoding(b64) == b"hello"
    qp = parse_part(b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\na=3Db=\r\nc")
    assert decode_transfer_encoding(qp) == b"a=bc"
    assert decode_transfer_encoding(parse_part(b"Content-Transfer-Encoding: x-uue\r\n\r\n")) is None
    broken = parse_part(b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8")
    assert decode_transfer_encoding(broken) == b"hello"


def test_text_parts_decode_charset() -> None:
    root = parse_part(RFC_EXAMPLE)
    texts = list(text_parts(root))
    assert "part 1" in texts
    assert "4.2.2.2" in texts
    latin = parse_part(
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"R3L832U=\r\n"
    )
    assert list(text_parts(latin)) == ["Grüße"]


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_random_messages_never_raise(data: bytes) -> None:
    root = parse_part(data)
    render(envelope(root))
    render(body_structure(root))
    list(text_parts(root))
    for path in ((), (1,), (1, 1), (2,)):
        find_part(root, path)


@settings(max_examples=100)
@given(
    st.lists(
        st.sampled_from(
            [
                b"--b\r\n",
                b"--b--\r\n",
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                b"Content-Type: message/rfc822\r\n",
                b"\r\n",
                b"text\r\n",
                b"From: (x <y@z>\r\n",
            ]
        ),
        max_size=30,
    )
)
def test_random_mime_structures_never_raise(chunks: list[bytes]) -> None:
    root = parse_part(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"".join(chunks))
    render(body_structure(root))
    render(envelope(root))
