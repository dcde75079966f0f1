"""The sans-IO connection: events, state transitions driven by responses, STARTTLS discard."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mox.imap import commands as c
from mox.imap.connection import (
    CLOSED,
    MAX_CONSECUTIVE_BAD,
    ClientLine,
    Event,
    ImapConnection,
    InvalidCommand,
)
from mox.imap.errors import LocalProtocolError
from mox.imap.receiver import NEED_DATA, NeedContinuation
from mox.imap.responses import Continuation, Exists, Tagged, Untagged
from mox.imap.state import State


def events(conn: ImapConnection, data: bytes = b"") -> list[Event]:
    conn.receive_data(data)
    out: list[Event] = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA or ev is CLOSED:
            return out
        out.append(ev)
        if isinstance(ev, c.Command | InvalidCommand | ClientLine):
            return out


def state_of(conn: ImapConnection) -> State:
    # A function call, so mypy does not keep an earlier narrowing of conn.state.
    return conn.state


def test_login_select_close_logout() -> None:
    conn = ImapConnection()
    [login] = events(conn, b"a1 LOGIN u p\r\n")
    assert login == c.Login(tag="a1", username="u", password="p")
    assert conn.send(Tagged("a1", "OK", "done")) == b"a1 OK done\r\n"
    assert state_of(conn) is State.AUTHENTICATED
    [sel] = events(conn, b"a2 SELECT Inbox\r\n")
    assert isinstance(sel, c.Select)
    assert conn.send(Exists(3)) == b"* 3 EXISTS\r\n"
    conn.send(Tagged("a2", "OK", "done"))
    assert state_of(conn) is State.SELECTED
    [sel2] = events(conn, b"a3 SELECT Nope\r\n")
    assert isinstance(sel2, c.Select)
    conn.send(Tagged(sel2.tag, "NO", "no such mailbox"))
    assert state_of(conn) is State.AUTHENTICATED  # RFC 9051 §6.3.2
    [_logout] = events(conn, b"a4 LOGOUT\r\n")
    conn.send(Untagged("BYE", "bye"))
    conn.send(Tagged("a4", "OK", "done"))
    assert state_of(conn) is State.LOGOUT
    assert conn.next_event() is CLOSED


def test_failed_login_stays_unauthenticated() -> None:
    conn = ImapConnection()
    events(conn, b"a1 LOGIN u p\r\n")
    conn.send(Tagged("a1", "NO", "bad"))
    assert state_of(conn) is State.NOT_AUTHENTICATED


def test_command_in_wrong_state_is_invalid() -> None:
    conn = ImapConnection()
    [ev] = events(conn, b"a1 SELECT Inbox\r\n")
    assert isinstance(ev, InvalidCommand)
    assert ev.tag == "a1"
    assert "not allowed" in ev.text
    assert conn.in_flight is None


def test_bad_syntax_gives_invalid_with_tag_or_none() -> None:
    conn = ImapConnection()
    [ev] = events(conn, b"a1 FROB\r\n")
    assert ev == InvalidCommand("a1", "unknown command FROB")
    [ev2] = events(conn, b"(( junk\r\n")
    assert isinstance(ev2, InvalidCommand)
    assert ev2.tag is None


def test_too_many_bad() -> None:
    conn = ImapConnection()
    for i in range(MAX_CONSECUTIVE_BAD):
        assert not conn.too_many_bad
        [ev] = events(conn, b"x%d FROB\r\n" % i)
        assert isinstance(ev, InvalidCommand)
        conn.send(Tagged(ev.tag or "*", "BAD", ev.text))
    assert conn.too_many_bad
    [_ok] = events(conn, b"y NOOP\r\n")
    conn.send(Tagged("y", "OK", "done"))
    assert not conn.too_many_bad


def test_sync_literal_continuation_then_command() -> None:
    conn = ImapConnection()
    conn.state = State.AUTHENTICATED
    [need] = events(conn, b"a1 APPEND Inbox {5}\r\n")
    assert need == NeedContinuation(5)
    assert conn.send(Continuation("Ready for literal data")) == b"+ Ready for literal data\r\n"
    [cmd] = events(conn, b"hello\r\n")
    assert isinstance(cmd, c.Append)
    assert cmd.message == b"hello"


def test_continuation_line_for_command_in_flight() -> None:
    conn = ImapConnection()
    [auth] = events(conn, b"a1 AUTHENTICATE PLAIN\r\n")
    assert isinstance(auth, c.Authenticate)
    with pytest.raises(LocalProtocolError):
        conn.next_event()  # no continuation sent yet
    conn.send(Continuation(data=b""))
    assert events(conn, b"AHUAcA==\r\n") == [ClientLine(b"AHUAcA==")]
    conn.send(Tagged("a1", "OK", "done"))
    assert state_of(conn) is State.AUTHENTICATED


def test_idle_done() -> None:
    conn = ImapConnection()
    conn.state = State.AUTHENTICATED
    [_idle] = events(conn, b"a1 IDLE\r\n")
    conn.send(Continuation("idling"))
    assert conn.next_event() is NEED_DATA
    conn.send(Exists(4))  # untagged data while idling does not end the wait
    assert events(conn, b"DONE\r\n") == [ClientLine(b"DONE")]
    conn.send(Tagged("a1", "OK", "done"))
    [noop] = events(conn, b"a2 NOOP\r\n")
    assert noop == c.Noop(tag="a2")


def test_starttls_discards_pipelined_plaintext() -> None:
    # RFC 9051 §6.2.1: a command injected after STARTTLS must never be executed.
    conn = ImapConnection()
    [tls] = events(conn, b"a1 STARTTLS\r\na2 LOGIN evil evil\r\n")
    assert isinstance(tls, c.StartTls)
    conn.send(Tagged("a1", "OK", "begin TLS"))
    assert conn.next_event() is NEED_DATA
    [cap] = events(conn, b"b1 CAPABILITY\r\n")
    assert cap == c.Capability(tag="b1")


def test_starttls_refused_keeps_input() -> None:
    conn = ImapConnection()
    events(conn, b"a1 STARTTLS\r\na2 NOOP\r\n")
    conn.send(Tagged("a1", "BAD", "no TLS"))
    assert events(conn) == [c.Noop(tag="a2")]


def test_enable_switches_mailbox_encoding() -> None:
    conn = ImapConnection()
    conn.state = State.AUTHENTICATED
    [sel] = events(conn, b"a SELECT &ZeVnLIqe-\r\n")
    assert sel == c.Select(tag="a", mailbox="日本語")
    conn.send(Tagged("a", "NO", "x"))
    conn.enable("imap4rev2")
    assert conn.utf8
    assert conn.rev2
    [sel2] = events(conn, b"b SELECT &ZeVnLIqe-\r\n")
    assert sel2 == c.Select(tag="b", mailbox="&ZeVnLIqe-")


def test_message_sized_literals_only_after_login() -> None:
    conn = ImapConnection(max_small_literal=10, max_literal=1000)
    [ev] = events(conn, b"a1 APPEND Inbox {500}\r\n")
    assert isinstance(ev, InvalidCommand)
    assert (ev.status, ev.tag) == ("NO", "a1")
    conn.state = State.AUTHENTICATED
    assert events(conn, b"a2 APPEND Inbox {500}\r\n") == [NeedContinuation(500)]


def test_receive_error_becomes_invalid_command() -> None:
    conn = ImapConnection(max_small_literal=3)
    [ev] = events(conn, b"a1 LOGIN {4}\r\n")
    assert isinstance(ev, InvalidCommand)
    assert ev.tag == "a1"
    assert ev.code is not None
    assert ev.code.name == "TOOBIG"


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_random_input_never_raises(chunks: list[bytes]) -> None:
    # Whatever the client sends, the connection only produces declared events; every command gets
    # an answer and the state machine stays consistent.
    conn = ImapConnection(max_line=200, max_small_literal=50, max_literal=100)
    for data in chunks:
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA or ev is CLOSED:
                break
            if isinstance(ev, NeedContinuation):
                conn.send(Continuation())
            elif isinstance(ev, InvalidCommand):
                conn.send(Tagged(ev.tag, "BAD", ev.text) if ev.tag else Untagged("BAD", ev.text))
            elif isinstance(ev, ClientLine):
                pytest.fail("no continuation was requested")
            else:
                conn.send(Tagged(ev.tag, "OK", "done"))
