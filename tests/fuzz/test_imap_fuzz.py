"""The IMAP receiver and command parser (mox/imap) and the MIME parsing behind FETCH
(mox/imapserver/message.py), fed random input in random fragments.

The receiver must never buffer more than its limits allow however the input is cut, and
every complete command either parses or raises ImapError; MIME parsing of any bytes yields a
BODYSTRUCTURE and an ENVELOPE without raising.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.imap.errors import ImapError
from mox.imap.parser import parse_command
from mox.imap.receiver import NEED_DATA, RawCommand, Receiver
from mox.imapserver.message import body_structure, envelope, parse_part, text_parts

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

IMAP_BITS = [
    "a1 ",
    "LOGIN ",
    "SELECT ",
    "FETCH ",
    "UID ",
    "APPEND ",
    "SEARCH ",
    "STORE ",
    "INBOX ",
    "1:* ",
    "(FLAGS BODY[HEADER.FIELDS (SUBJECT)]) ",
    "{5}\r\n",
    "{3+}\r\n",
    "{99999999}\r\n",
    "~{2}\r\n",
    '"quoted\\"" ',
    "(\\Seen) ",
    "\r\n",
    "CHARSET UTF-8 ",
    "TEXT ",
    "NIL ",
    ")",
    "(",
    "\x00",
    "é",
    "*",
    "%",
    "]",
    "[",
]
imap_input = st.lists(st.sampled_from(IMAP_BITS) | st.text(max_size=6), max_size=25).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)


@FUZZ
@given(imap_input, st.lists(st.integers(1, 20), min_size=1, max_size=5))
def test_receiver_and_parser(data: bytes, cuts: list[int]) -> None:
    recv = Receiver(max_line=200, max_literal=1000, max_small_literal=100, max_discard=500)
    pos = 0
    i = 0
    events = 0
    while pos < len(data) and events < 10_000:
        n = cuts[i % len(cuts)]
        recv.feed(data[pos : pos + n])
        pos += n
        i += 1
        while events < 10_000:
            ev = recv.next_event()
            events += 1
            if ev is NEED_DATA:
                break
            if isinstance(ev, RawCommand):
                try:
                    parse_command(ev)
                except ImapError:
                    pass
        # Bounded memory: a line is at most max_line, a literal at most max_literal.
        assert recv.buffered <= 200 + 1000 + 20


mime_bits = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b'Content-Type: multipart/digest; boundary="x y"\r\n',
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Subject: =?utf-8?b?w6k=?=\r\n",
    b'From: A <a@b.c>, "x" <@>\r\n',
    b"To: undisclosed-recipients:;\r\n",
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--x y\r\n",
    b"=C3=A9=\r\n",
    b"w6k=\r\n",
    b"\xff\xfe",
    b"\r",
    b"\n",
    b": ",
    b"\t",
]
mime = st.lists(st.sampled_from(mime_bits) | st.binary(max_size=8), max_size=30).map(b"".join)


@FUZZ
@given(mime)
def test_mime_parsing_never_raises(data: bytes) -> None:
    part = parse_part(data)
    body_structure(part)
    body_structure(part, extensible=False)
    envelope(part)
    for text in text_parts(part):
        assert isinstance(text, str)
