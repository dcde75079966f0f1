"""Sans-IO IMAP server connection (h11 style): bytes in, typed events out, responses to bytes.

Usage by a server::

    conn = ImapConnection()
    out = conn.send(Untagged("OK", "hello"))          # greeting
    conn.receive_data(data)                          # whatever the socket produced
    event = conn.next_event()                        # Command, ClientLine, NeedContinuation, ...
    out = conn.send(Tagged(cmd.tag, "OK", "done"))   # state follows the tagged response

Theory of operation:
- The receiver (``mox.imap.receiver``) splits input into commands; the parser turns each into a
  ``Command``. A malformed command becomes ``InvalidCommand`` (answer BAD, or NO for [TOOBIG]).
- A command not allowed in the current state (``mox.imap.state.ALLOWED``) becomes
  ``InvalidCommand``.
- One command is in flight at a time (RFC 9051 §5.5 allows more, mox handles one at a time). While
  it is in flight, ``next_event()`` may only be called after a continuation request was sent for it
  (AUTHENTICATE, IDLE); the next line is then returned as ``ClientLine``.
- Sending the tagged response ends the command and applies the state transition from the state
  table.
- Sending the tagged OK of STARTTLS discards all input received after the command: a client must not
  pipeline after STARTTLS, and anything it did is plaintext injection (RFC 9051 §6.2.1,
  RFC 3207 §6).
- Before authentication, literals are limited to the small size for every command, so nobody can
  make us buffer a message-sized literal without logging in.
- Consecutive BAD responses are counted; ``too_many_bad`` says when to say BYE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, TypeAlias

from mox.imap import commands as c
from mox.imap import state as st
from mox.imap.errors import ImapBad, LocalProtocolError
from mox.imap.parser import parse_command, parse_tag
from mox.imap.receiver import (
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_LITERAL,
    DEFAULT_MAX_SMALL_LITERAL,
    NEED_DATA,
    NeedContinuation,
    NeedDataType,
    RawCommand,
    RawLine,
    ReceiveError,
    Receiver,
)
from mox.imap.responses import (
    Continuation,
    Response,
    ResponseCode,
    Tagged,
    Untagged,
    serialize,
)

MAX_CONSECUTIVE_BAD: Final = 20


@dataclass(frozen=True, slots=True)
class InvalidCommand:
    """Input that is not a valid command here; answer ``status`` (tagged if tag, else untagged)."""

    tag: str | None
    text: str
    code: ResponseCode | None = None
    status: str = "BAD"
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class ClientLine:
    """A line sent in answer to a continuation request (SASL data, IDLE's DONE)."""

    data: bytes


class _Closed(enum.Enum):
    CLOSED = "CLOSED"


CLOSED: Final = _Closed.CLOSED
"""Returned by next_event() once the connection is in the LOGOUT state."""

Event: TypeAlias = (
    c.Command | ClientLine | NeedContinuation | InvalidCommand | NeedDataType | _Closed
)


class ImapConnection:
    """See the module docstring."""

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_literal: int = DEFAULT_MAX_LITERAL,
        max_small_literal: int = DEFAULT_MAX_SMALL_LITERAL,
    ) -> None:
        self.receiver = Receiver(
            max_line=max_line, max_literal=max_literal, max_small_literal=max_small_literal
        )
        self._max_literal = max_literal
        self.state = st.State.NOT_AUTHENTICATED
        self.enabled: set[str] = set()
        self.consecutive_bad = 0
        self._in_flight: c.Command | None = None
        self._awaiting_line = False

    @property
    def utf8(self) -> bool:
        """Mailbox names and quoted strings in UTF-8 (RFC 9051 §5.1, RFC 6855 §3)."""
        return "IMAP4REV2" in self.enabled or "UTF8=ACCEPT" in self.enabled

    @property
    def rev2(self) -> bool:
        """The client enabled IMAP4rev2 (RFC 9051 §6.3.1): rev2 response forms."""
        return "IMAP4REV2" in self.enabled

    @property
    def in_flight(self) -> c.Command | None:
        return self._in_flight

    @property
    def mid_command(self) -> bool:
        """Input of a command that is not complete yet (see ``Receiver.mid_command``)."""
        return self.receiver.mid_command

    @property
    def too_many_bad(self) -> bool:
        return self.consecutive_bad >= MAX_CONSECUTIVE_BAD

    def enable(self, capability: str) -> None:
        """Record an ENABLEd extension (RFC 5161); upper case."""
        self.enabled.add(capability.upper())

    def receive_data(self, data: bytes) -> None:
        self.receiver.feed(data)

    def next_event(self) -> Event:
        """The next event from the received data; NEED_DATA when more is needed."""
        if self.state is st.State.LOGOUT:
            return CLOSED
        if self._in_flight is not None and not self._awaiting_line:
            raise LocalProtocolError("a command is in flight; send its response first")
        # Message-sized literals only once authenticated: APPEND is not allowed before anyway.
        authenticated = self.state in (st.State.AUTHENTICATED, st.State.SELECTED)
        self.receiver.max_literal = (
            self._max_literal if authenticated else self.receiver.max_small_literal
        )
        ev = self.receiver.next_event()
        if ev is NEED_DATA:
            return NEED_DATA
        if isinstance(ev, NeedContinuation):
            return ev
        if isinstance(ev, ReceiveError):
            code = ResponseCode(ev.code) if ev.code else None
            if self._awaiting_line:
                self._awaiting_line = False
                self.receiver.line_mode = False
                tag = self._in_flight.tag if self._in_flight else None
                return InvalidCommand(tag, ev.text, code, ev.status, ev.fatal)
            return InvalidCommand(ev.tag, ev.text, code, ev.status, ev.fatal)
        if isinstance(ev, RawLine):
            self._awaiting_line = False
            self.receiver.line_mode = False
            return ClientLine(ev.data)
        return self._command(ev)

    def _command(self, raw: RawCommand) -> c.Command | InvalidCommand:
        try:
            cmd = parse_command(raw, utf8=self.utf8)
        except ImapBad as e:
            return InvalidCommand(parse_tag(raw), e.text, e.code)
        if not st.is_allowed(self.state, cmd.name):
            return InvalidCommand(cmd.tag, f"{cmd.name} not allowed in {self.state.value} state")
        self._in_flight = cmd
        return cmd

    def send(self, response: Response) -> bytes:
        """Serialise a response, updating the state for tagged responses, BYE and continuations."""
        if isinstance(response, Tagged):
            self._complete(response)
        elif isinstance(response, Untagged):
            if response.kind == "BYE":
                self.state = st.State.LOGOUT
            elif response.kind == "BAD":
                self.consecutive_bad += 1
        elif isinstance(response, Continuation) and self._in_flight is not None:
            # The client answers a continuation request for the command in flight with one line.
            self._awaiting_line = True
            self.receiver.line_mode = True
        return serialize(response, utf8=self.utf8)

    def _complete(self, response: Tagged) -> None:
        cmd = self._in_flight
        if response.status == "BAD":
            self.consecutive_bad += 1
        else:
            self.consecutive_bad = 0
        if cmd is None or cmd.tag != response.tag:
            # The answer to an InvalidCommand or a refused literal: no command was in flight.
            return
        self._in_flight = None
        self._awaiting_line = False
        self.receiver.line_mode = False
        if response.status == "OK":
            self.state = st.after_ok(self.state, cmd.name)
            if cmd.name == "STARTTLS":
                self.receiver.discard_buffered()  # RFC 9051 §6.2.1: no plaintext injection
        else:
            self.state = st.after_failure(self.state, cmd.name)
