"""DATA framing and CHUNKING over real sockets: smuggling variants, BDAT, size limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypothesis import assume, given
from hypothesis import strategies as st

from mox.smtp.data import DataReader
from tests.serverthread import ServerThread, start_server
from tests.smtpserver.raw import Raw, stored

Server = tuple[ServerThread, dict[str, int]]

# Published SMTP smuggling end-of-data variants (SEC Consult 2023, Postfix/Sendmail advisories):
# each would end the data early at a lax server, so the rest would become a second message.
VARIANTS = [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n\x00.\r\n"]


def small_limit(data: dict[str, Any]) -> None:
    data["listeners"]["test"]["max_message_size"] = 4096


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, ca, small_limit)
    yield srv, ports
    srv.stop()


def session(port: int) -> Raw:
    raw = Raw(port)
    raw.reply()
    raw.cmd("EHLO client.example.org")
    return raw


@pytest.mark.parametrize("variant", VARIANTS)
def test_smuggling_variant_refused_and_never_split(server: Server, variant: bytes) -> None:
    srv, ports = server
    raw = session(ports["smtp"])
    try:
        raw.cmd("MAIL FROM:<attacker@example.org>")
        raw.cmd("RCPT TO:<alice@example.test>")
        assert raw.cmd("DATA").startswith("354")
        smuggled = (
            b"Subject: first\r\n\r\nfirst body"
            + variant
            + b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
            + b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
        )
        reply = raw.cmd(smuggled)
        if variant == b"\r\n\x00.\r\n":  # a NUL is no line break: one intact message
            assert reply.startswith("250 2.0.0")
        else:
            assert reply == "500 5.5.2 invalid bare \\r or \\n, may be smtp smuggling"
        assert raw.cmd("NOOP").startswith("250")  # in sync, usable
    finally:
        raw.close()
    msgs = stored(srv, "alice", "Inbox")
    assert len(msgs) <= 1
    # Whatever was kept is one message, with the "smuggled" text inside its body.
    assert all(m.find(b"Subject: smuggled") > m.find(b"first body") > 0 for m in msgs)
    for m in msgs:  # if kept, the "smuggled" text stayed inside the one message
        assert m.count(b"Subject: first") == 1


def test_bdat_chunks_arrive_intact(server: Server) -> None:
    srv, ports = server
    raw = session(ports["smtp"])
    part1 = b"Subject: chunked\r\n\r\nline one\r\n.not stuffed\r\n"
    part2 = b"\r\n.\r\nstill the same message\r\n"  # CRLF.CRLF means nothing inside BDAT
    try:
        raw.cmd("MAIL FROM:<x@example.org>")
        raw.cmd("RCPT TO:<alice@example.test>")
        assert raw.cmd(b"BDAT %d\r\n" % len(part1) + part1) == "250 2.0.0 44 octets received"
        assert raw.cmd(b"BDAT %d LAST\r\n" % len(part2) + part2).startswith("250 2.0.0 OK")
        # BDAT without a transaction: the chunk is read and refused, the session goes on.
        assert raw.cmd(b"BDAT 5 LAST\r\nhello").startswith("503 5.5.1")
        assert raw.cmd("NOOP").startswith("250")
        raw.cmd("MAIL FROM:<x@example.org>")
        raw.cmd("RCPT TO:<alice@example.test>")
        assert raw.cmd(b"BDAT 3\r\nabc").startswith("250")
        assert raw.cmd("DATA").startswith("503 5.5.1")  # RFC 3030 §2: no DATA after BDAT
        big = b"x" * 5000
        assert raw.cmd(b"BDAT %d LAST\r\n" % len(big) + big) == "552 5.3.4 message too large"
        assert raw.cmd("NOOP").startswith("250")
    finally:
        raw.close()
    (msg,) = stored(srv, "alice", "Inbox")
    assert msg.endswith(part1 + part2)


def test_data_over_size_limit_is_read_then_refused(server: Server) -> None:
    srv, ports = server
    raw = session(ports["smtp"])
    try:
        raw.cmd("MAIL FROM:<x@example.org>")
        raw.cmd("RCPT TO:<alice@example.test>")
        raw.cmd("DATA")
        assert (
            raw.cmd(
                b"Subject: big\r\n\r\n"
                + b"y" * 300
                + b"\r\n" * 1
                + (b"z" * 70 + b"\r\n") * 100
                + b".\r\n"
            )
            == "552 5.3.4 message too large"
        )
        raw.cmd("MAIL FROM:<x@example.org>")
        raw.cmd("RCPT TO:<alice@example.test>")
        raw.cmd("DATA")
        long_line = b"w" * 3000  # longer than the command line limit, fine in DATA
        assert raw.cmd(b"Subject: long\r\n\r\n" + long_line + b"\r\n.\r\n").startswith("250")
    finally:
        raw.close()
    (msg,) = stored(srv, "alice", "Inbox")
    assert msg.endswith(b"\r\n\r\n" + b"w" * 3000 + b"\r\n")


# Sans-IO reader properties.


def feed_lines(reader: DataReader, data: bytes, piece: int) -> None:
    """Feed like the server: lines up to LF, overlong lines in pieces of at most `piece`."""
    while data and not reader.done:
        nl = data.find(b"\n")
        line = data if nl < 0 else data[: nl + 1]
        if len(line) > piece:
            reader.feed(line[:piece], False)
            data = data[piece:]
            continue
        reader.feed(line, nl >= 0)
        data = data[len(line) :]


@given(st.lists(st.text(alphabet="ab.\r\n", max_size=20), max_size=10), st.integers(3, 8))
def test_reader_roundtrip_of_clean_messages(lines: list[str], piece: int) -> None:
    body = [ln.replace("\r", "").replace("\n", "") for ln in lines]
    original = b"".join(ln.encode() + b"\r\n" for ln in body)
    stuffed = b"".join((b"." if ln.startswith(".") else b"") + ln.encode() + b"\r\n" for ln in body)
    reader = DataReader(10_000)
    feed_lines(reader, stuffed + b".\r\n", piece)
    assert reader.done
    assert not reader.bare_cr_lf
    assert reader.result() == original


@given(st.binary(max_size=200), st.integers(3, 8))
def test_reader_flags_exactly_bare_cr_or_lf(data: bytes, piece: int) -> None:
    assume(b"\n.\r\n" not in b"\n" + data)  # no earlier end of data
    reader = DataReader(10_000)
    feed_lines(reader, data + b"\r\n.\r\n", piece)
    assert reader.done
    lone = (data + b"\r\n").replace(b"\r\n", b"")
    assert reader.bare_cr_lf == (b"\r" in lone or b"\n" in lone)
