"""Resumable IMAP command receiver: bytes in, complete command lines with their literals out.

RFC 9051 §2.2.1 and §4.3: a command is a line, except that a line ending in a literal marker ``{n}``
(synchronising) or ``{n+}`` (LITERAL+, RFC 7888 §3) is followed by exactly n octets and then the
rest of the command. For a synchronising literal the server first sends a continuation request
(``NeedContinuation``); for a non-synchronising one the client sends the octets right away.

Theory of operation: ``feed()`` only appends to a buffer. ``next_event()`` does the work, lazily, so
a server that handles one command at a time never sends a continuation for a pipelined literal
before the earlier commands are answered. Events:

- ``RawCommand(chunks, literals)``: the command text split at the literals (the markers removed),
  ``len(chunks) == len(literals) + 1``;
- ``RawLine(data)``: in line mode (continuation data for AUTHENTICATE, "DONE" for IDLE), one line;
- ``NeedContinuation(size)``: tell the client to send a synchronising literal;
- ``ReceiveError(tag, text, code, fatal)``: a limit was hit. The receiver has already arranged to
  skip the offending input (the rest of the line, a non-synchronising literal), so the connection
  stays usable unless ``fatal``;
- ``NEED_DATA``: feed more bytes.

Limits: ``max_line`` bounds the command text without literals; ``max_literal`` bounds the literals
of APPEND and ``max_small_literal`` those of every other command (per command, summed). Lenience: a
bare LF ends a line like CRLF does (RFC 9051 §2.2 asks for CRLF).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, TypeAlias

from mox.imap.abnf import LITERAL_MARKER_RE, is_tag

DEFAULT_MAX_LINE: Final = 64 * 1024
DEFAULT_MAX_LITERAL: Final = 100 * 1024 * 1024
DEFAULT_MAX_SMALL_LITERAL: Final = 64 * 1024
# A too-large non-synchronising literal is read and discarded up to this many octets (RFC 7888 §4
# leaves the choice between that and closing the connection); beyond it we close.
DEFAULT_MAX_DISCARD: Final = 1024 * 1024 * 1024
# Commands whose literals may be large (message data).
LARGE_LITERAL_COMMANDS: Final = frozenset({"APPEND", "REPLACE"})  # RFC 8508 REPLACE


@dataclass(frozen=True, slots=True)
class RawCommand:
    """A complete command: text chunks with the literals between them."""

    chunks: tuple[bytes, ...]
    literals: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line received in line mode, without its line end."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """The client announced a synchronising literal of ``size`` octets and waits for "+"."""

    size: int


@dataclass(frozen=True, slots=True)
class ReceiveError:
    """Input over a limit; ``code`` is an IMAP response code name such as TOOBIG."""

    tag: str | None
    text: str
    code: str | None = None
    fatal: bool = False
    # "NO" for a refused APPEND literal (RFC 7889 §4 [TOOBIG]), else "BAD".
    status: str = "BAD"


class NeedDataType(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = NeedDataType.NEED_DATA

ReceiverEvent: TypeAlias = RawCommand | RawLine | NeedContinuation | ReceiveError | NeedDataType


class _Mode(enum.Enum):
    LINE = "line"  # reading command text
    LITERAL = "literal"  # reading literal octets
    SKIP_LINE = "skip-line"  # discarding the rest of an over-long or refused command line
    SKIP_LITERAL = "skip-literal"  # discarding a refused non-synchronising literal


def _marker_outside_quotes(line: bytes) -> tuple[int, int, bool] | None:
    """(start, size, non_sync) when line ends in a literal marker that is not inside a quoted
    string.
    """
    if not line.endswith(b"}"):
        return None
    m = LITERAL_MARKER_RE.search(line)
    if m is None:
        return None
    # quoted = DQUOTE *QUOTED-CHAR DQUOTE; a quoted string cannot contain CR/LF, so quoting state
    # restarts on every line (RFC 9051 §4.3).
    in_quote = False
    escaped = False
    for b in line[: m.start()]:
        if escaped:
            escaped = False
        elif in_quote and b == 0x5C:  # "\"
            escaped = True
        elif b == 0x22:  # DQUOTE
            in_quote = not in_quote
    if in_quote:
        return None
    return m.start(), int(m.group(1)), m.group(2) == b"+"


class Receiver:
    """See the module docstring."""

    def __init__(
        self,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_literal: int = DEFAULT_MAX_LITERAL,
        max_small_literal: int = DEFAULT_MAX_SMALL_LITERAL,
        max_discard: int = DEFAULT_MAX_DISCARD,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_small_literal = max_small_literal
        self.max_discard = max_discard
        self.line_mode = False
        self._buf = bytearray()
        self._mode = _Mode.LINE
        self._remaining = 0  # octets left of the current (or skipped) literal
        self._lit = bytearray()
        self._skip_tail = b""  # last bytes of a skipped line, to find a literal marker at its end
        self._closed = False
        self._reset_command()

    def _reset_command(self) -> None:
        self._chunks: list[bytes] = []
        self._literals: list[bytes] = []
        self._text_len = 0
        self._literal_len = 0
        self._tag: str | None = None
        self._command: str | None = None

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if not self._closed:
            self._buf += data

    def discard_buffered(self) -> None:
        """Forget all unreturned input (after STARTTLS: RFC 9051 §6.2.1, RFC 3207 §6)."""
        self._buf.clear()
        self._lit.clear()
        self._mode = _Mode.LINE
        self._remaining = 0
        self._reset_command()

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed."""
        return len(self._buf)

    @property
    def mid_command(self) -> bool:
        """Part of a command (or of its literal) has arrived but not all of it: a server that is
        shutting down lets such a command finish rather than cut it off."""
        return self._mode is not _Mode.LINE or bool(self._chunks) or bool(self._buf)

    def _note_first_chunk(self, text: bytes) -> None:
        if self._chunks:
            return
        words = text.split(b" ", 3)
        if words and is_tag(words[0]):
            self._tag = words[0].decode("ascii")
        if len(words) >= 2:
            name = words[1].upper()
            if name == b"UID" and len(words) >= 3:
                name = words[2].upper()
            self._command = name.decode("ascii", "replace")

    def _literal_limit(self) -> int:
        if self._command in LARGE_LITERAL_COMMANDS:
            return self.max_literal
        return self.max_small_literal

    def _fail(self, text: str, code: str | None = None, *, fatal: bool = False) -> ReceiveError:
        is_append = self._command in LARGE_LITERAL_COMMANDS and code == "TOOBIG"
        err = ReceiveError(self._tag, text, code, fatal, "NO" if is_append else "BAD")
        if fatal:
            self._closed = True
            self._buf.clear()
        return err

    def next_event(self) -> ReceiverEvent:
        """Return the next event; NEED_DATA when more input is needed."""
        while True:
            if self._closed:
                return NEED_DATA
            if self._mode is _Mode.LITERAL:
                take = min(self._remaining, len(self._buf))
                self._lit += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return NEED_DATA
                self._literals.append(bytes(self._lit))
                self._lit.clear()
                self._mode = _Mode.LINE
                continue
            if self._mode is _Mode.SKIP_LITERAL:
                take = min(self._remaining, len(self._buf))
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return NEED_DATA
                self._mode = _Mode.SKIP_LINE
                continue

            nl = self._buf.find(b"\n")
            if self._mode is _Mode.SKIP_LINE:
                if nl < 0:
                    self._skip_tail = (self._skip_tail + bytes(self._buf))[-32:]
                    self._buf.clear()
                    return NEED_DATA
                tail = (self._skip_tail + bytes(self._buf[:nl]))[-32:].rstrip(b"\r")
                del self._buf[: nl + 1]
                self._skip_tail = b""
                marker = _marker_outside_quotes(tail)
                if marker is not None and marker[2]:
                    # The skipped line announced a non-synchronising literal: skip its octets too.
                    if marker[1] > self.max_discard:
                        return self._fail("literal too large", "TOOBIG", fatal=True)
                    self._remaining = marker[1]
                    self._mode = _Mode.SKIP_LITERAL
                    continue
                # End of the skipped command (no synchronising literal follows: we sent no "+").
                self._mode = _Mode.LINE
                self._reset_command()
                continue

            # _Mode.LINE
            if nl < 0:
                if self._text_len + len(self._buf) > self.max_line:
                    self._note_first_chunk(bytes(self._buf[:256]))
                    self._skip_tail = bytes(self._buf[-32:])
                    self._buf.clear()
                    self._mode = _Mode.SKIP_LINE
                    return self._fail("line too long", "TOOBIG")
                return NEED_DATA
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if self.line_mode:
                if len(line) > self.max_line:
                    return ReceiveError(None, "line too long", "TOOBIG")
                return RawLine(line)
            self._note_first_chunk(line)
            self._text_len += len(line)
            if self._text_len > self.max_line:
                err = self._fail("line too long", "TOOBIG")
                # Treat the rest as skipped: a trailing non-synchronising literal must be discarded.
                self._skip_tail = line[-32:]
                self._buf[0:0] = b"\n"
                self._mode = _Mode.SKIP_LINE
                return err
            marker = _marker_outside_quotes(line)
            if marker is None:
                self._chunks.append(line)
                cmd = RawCommand(tuple(self._chunks), tuple(self._literals))
                self._reset_command()
                return cmd
            start, size, non_sync = marker
            self._chunks.append(line[:start])
            limit = self._literal_limit()
            if self._literal_len + size > limit:
                if not non_sync:
                    # RFC 9051 §4.3: reject instead of sending "+"; the client then sends nothing.
                    err = self._fail("literal too large", "TOOBIG")
                    self._reset_command()
                    return err
                # RFC 7888 §4: a refused non-synchronising literal must be read and discarded.
                if size > self.max_discard:
                    return self._fail("literal too large", "TOOBIG", fatal=True)
                err = self._fail("literal too large", "TOOBIG")
                self._remaining = size
                self._mode = _Mode.SKIP_LITERAL
                return err
            self._literal_len += size
            self._remaining = size
            self._mode = _Mode.LITERAL
            if not non_sync:
                return NeedContinuation(size)
