"""The resumable receiver: RFC 9051 examples in arbitrary fragments, literals and limits."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.imap.receiver import (
    NEED_DATA,
    NeedContinuation,
    RawCommand,
    RawLine,
    ReceiveError,
    Receiver,
    ReceiverEvent,
)

# RFC 9051 §8 sample session (client side) and §6.3.12 APPEND with a synchronising literal.
RFC_SESSION = (
    b"a001 login mrc secret\r\n"
    b"a002 select inbox\r\n"
    b"a003 fetch 12 full\r\n"
    b"a004 fetch 12 body[header]\r\n"
    b"a005 store 12 +flags \\deleted\r\n"
    b"a006 logout\r\n"
)
APPEND_MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)
RFC_APPEND = b"A003 APPEND saved-messages (\\Seen) {%d}\r\n%s\r\n" % (
    len(APPEND_MESSAGE),
    APPEND_MESSAGE,
)
# RFC 9051 §4.3 / Stalwart's favourite: two synchronising literals in one LOGIN.
RFC_LOGIN_LITERALS = b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n"


def drain(r: Receiver) -> list[ReceiverEvent]:
    out: list[ReceiverEvent] = []
    while (ev := r.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def feed_fragments(data: bytes, sizes: list[int], r: Receiver | None = None) -> list[ReceiverEvent]:
    r = r or Receiver()
    events: list[ReceiverEvent] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)] if sizes else len(data)
        r.feed(data[pos : pos + n])
        pos += n
        i += 1
        events += drain(r)
    return events


def commands(events: list[ReceiverEvent]) -> list[RawCommand]:
    return [e for e in events if isinstance(e, RawCommand)]


@given(st.lists(st.integers(min_value=1, max_value=17), min_size=1, max_size=30))
def test_rfc_session_in_fragments(sizes: list[int]) -> None:
    events = feed_fragments(RFC_SESSION, sizes)
    assert [c.chunks[0].split(b" ")[0] for c in commands(events)] == [
        b"a001",
        b"a002",
        b"a003",
        b"a004",
        b"a005",
        b"a006",
    ]
    assert all(isinstance(e, RawCommand) and not e.literals for e in events)
    assert commands(events)[4].chunks == (b"a005 store 12 +flags \\deleted",)


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_append_literal_in_fragments(sizes: list[int]) -> None:
    events = feed_fragments(RFC_APPEND, sizes)
    assert events == [
        NeedContinuation(len(APPEND_MESSAGE)),
        RawCommand((b"A003 APPEND saved-messages (\\Seen) ", b""), (APPEND_MESSAGE,)),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_login_two_literals_random_split(seed: int) -> None:
    rnd = random.Random(seed)
    sizes = [rnd.randint(1, 8) for _ in range(20)]
    events = feed_fragments(RFC_LOGIN_LITERALS, sizes)
    assert events == [
        NeedContinuation(11),
        NeedContinuation(7),
        RawCommand((b"A001 LOGIN ", b" ", b""), (b"FRED FOOBAR", b"fat man")),
    ]


def test_continuation_is_lazy_until_earlier_commands_are_taken() -> None:
    # One command at a time: the "+" for a pipelined literal must wait for next_event().
    r = Receiver()
    r.feed(b"a1 NOOP\r\na2 APPEND x {3}\r\n")
    assert r.next_event() == RawCommand((b"a1 NOOP",), ())
    assert r.next_event() == NeedContinuation(3)
    assert r.next_event() is NEED_DATA
    r.feed(b"abc\r\n")
    assert r.next_event() == RawCommand((b"a2 APPEND x ", b""), (b"abc",))


def test_literal_plus_needs_no_continuation() -> None:
    # RFC 7888 §3: "{n+}" literals follow without a continuation request.
    events = feed_fragments(b"A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n", [5])
    assert events == [RawCommand((b"A001 LOGIN ", b" ", b""), (b"FRED FOOBAR", b"fat man"))]


def test_literal_may_contain_crlf_and_braces() -> None:
    data = b"x\r\n{3}\r\n"
    events = feed_fragments(b"a APPEND box {%d+}\r\n%s\r\n" % (len(data), data), [1])
    assert events == [RawCommand((b"a APPEND box ", b""), (data,))]


@pytest.mark.parametrize(
    ("line", "is_literal"),
    [
        (b'a SEARCH SUBJECT "{3}"', False),  # marker inside a quoted string ending the line
        (b'a SEARCH SUBJECT "x {3}', False),  # quote still open
        (b'a SEARCH SUBJECT "a\\" {3}', False),  # escaped quote keeps the string open
        (b'a SEARCH SUBJECT "a\\\\" {3}', True),  # escaped backslash, quote closed
        (b"a LOGIN {3}", True),
        (b"a LOGIN {3+}", True),
        (b"a LOGIN {3 }", False),
        (b"a LOGIN {-3}", False),
    ],
)
def test_marker_detection_respects_quotes(line: bytes, is_literal: bool) -> None:
    r = Receiver()
    r.feed(line + b"\r\n")
    ev = r.next_event()
    if is_literal:
        assert isinstance(ev, NeedContinuation) or ev is NEED_DATA
    else:
        assert ev == RawCommand((line,), ())


def test_bare_lf_accepted() -> None:
    events = feed_fragments(b"a NOOP\nb NOOP\r\n", [3])
    assert events == [RawCommand((b"a NOOP",), ()), RawCommand((b"b NOOP",), ())]


def test_line_too_long_then_usable() -> None:
    r = Receiver(max_line=100)
    r.feed(b"t1 NOOP " + b"x" * 200)
    ev = r.next_event()
    assert isinstance(ev, ReceiveError)
    assert ev.tag == "t1"
    assert ev.code == "TOOBIG"
    assert not ev.fatal
    r.feed(b"y" * 500 + b"\r\nt2 NOOP\r\n")
    assert drain(r) == [RawCommand((b"t2 NOOP",), ())]


def test_line_too_long_in_one_piece_then_usable() -> None:
    r = Receiver(max_line=50)
    r.feed(b"t1 NOOP " + b"x" * 60 + b"\r\nt2 NOOP\r\n")
    events = drain(r)
    assert isinstance(events[0], ReceiveError)
    assert events[1:] == [RawCommand((b"t2 NOOP",), ())]


def test_over_long_line_with_non_sync_literal_skips_the_literal() -> None:
    r = Receiver(max_line=50)
    r.feed(b"t1 LOGIN " + b"x" * 60 + b" {5+}\r\nt0 XXsecret-ish\r\nt2 NOOP\r\n")
    events = drain(r)
    assert isinstance(events[0], ReceiveError)
    # "t0 XX" was the literal; the rest of that command line is skipped with it.
    assert events[1:] == [RawCommand((b"t2 NOOP",), ())]


def test_sync_literal_too_big_is_refused_without_reading() -> None:
    r = Receiver(max_small_literal=10)
    r.feed(b"t1 LOGIN {11}\r\nt2 NOOP\r\n")
    ev = r.next_event()
    assert ev == ReceiveError("t1", "literal too large", "TOOBIG", False, "BAD")
    # The client got a tagged answer instead of "+", so it does not send the octets.
    assert r.next_event() == RawCommand((b"t2 NOOP",), ())


def test_append_literal_too_big_gets_no_toobig() -> None:
    r = Receiver(max_literal=1000)
    r.feed(b"t1 APPEND Inbox {1001}\r\n")
    ev = r.next_event()
    assert isinstance(ev, ReceiveError)
    assert (ev.status, ev.code, ev.tag) == ("NO", "TOOBIG", "t1")


def test_append_limit_differs_from_other_commands() -> None:
    r = Receiver(max_literal=1000, max_small_literal=10)
    r.feed(b"t1 APPEND Inbox {500}\r\n")
    assert r.next_event() == NeedContinuation(500)
    r2 = Receiver(max_literal=1000, max_small_literal=10)
    r2.feed(b"t1 LOGIN {500}\r\n")
    assert isinstance(r2.next_event(), ReceiveError)


def test_literals_are_limited_per_command_in_total() -> None:
    r = Receiver(max_small_literal=10)
    r.feed(b"t1 LOGIN {6+}\r\nabcdef {6+}\r\nghijkl\r\nt2 NOOP\r\n")
    events = drain(r)
    assert isinstance(events[0], ReceiveError)
    assert events[1:] == [RawCommand((b"t2 NOOP",), ())]


def test_non_sync_literal_too_big_is_discarded() -> None:
    r = Receiver(max_small_literal=4)
    events = feed_fragments(b"t1 LOGIN {10+}\r\n0123456789 rest\r\nt2 NOOP\r\n", [3], r)
    assert isinstance(events[0], ReceiveError)
    assert events[0].tag == "t1"
    assert events[1:] == [RawCommand((b"t2 NOOP",), ())]


def test_huge_non_sync_literal_is_fatal() -> None:
    r = Receiver(max_small_literal=4, max_discard=1000)
    r.feed(b"t1 LOGIN {1001+}\r\n")
    ev = r.next_event()
    assert isinstance(ev, ReceiveError)
    assert ev.fatal
    r.feed(b"t2 NOOP\r\n")
    assert r.next_event() is NEED_DATA


def test_line_mode_returns_lines_without_literal_processing() -> None:
    r = Receiver()
    r.line_mode = True
    r.feed(b"DONE {3}\r\n")
    assert r.next_event() == RawLine(b"DONE {3}")


def test_discard_buffered_forgets_pipelined_input() -> None:
    r = Receiver()
    r.feed(b"a STARTTLS\r\nb LOGIN x y\r\n")
    assert r.next_event() == RawCommand((b"a STARTTLS",), ())
    r.discard_buffered()
    assert r.next_event() is NEED_DATA
    r.feed(b"c NOOP\r\n")
    assert r.next_event() == RawCommand((b"c NOOP",), ())


@given(st.binary(max_size=400), st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_random_input_only_yields_declared_events(data: bytes, sizes: list[int]) -> None:
    r = Receiver(max_line=64, max_small_literal=32, max_literal=64, max_discard=128)
    for ev in feed_fragments(data, sizes, r):
        assert isinstance(ev, RawCommand | NeedContinuation | ReceiveError)
        if isinstance(ev, RawCommand):
            assert len(ev.chunks) == len(ev.literals) + 1
            assert sum(map(len, ev.chunks)) <= 64
