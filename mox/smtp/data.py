"""DATA framing (RFC 5321 §4.1.1.4, §4.5.2): end at CRLF.CRLF only, dot-unstuffing, size limit,
and refusal of bare CR or LF, which makes SMTP smuggling impossible (as mox since v0.0.9).

Sans-IO: the server feeds what it reads, a complete line (ending in LF) or a piece of an overlong
line (`feed`), or any run of such lines as read (`feed_lines`), and asks `done` / `result()`.
Reading goes on to the real end of the data even after an error, so the connection stays in sync
and the client gets one clear reply.
"""

from __future__ import annotations

__all__ = ["DataReader"]


class DataReader:
    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._out = bytearray()
        self.size = 0
        self.too_big = False
        self.bare_cr_lf = False  # RFC 5321 §2.3.8: CR and LF only as CRLF
        self.eight_bit = False
        self.done = False
        self._at_line_start = True
        self._pending_cr = False

    def feed(self, chunk: bytes, complete: bool) -> None:
        """A complete line (ends with LF) or, when `complete` is False, a piece of a long line."""
        if self.done:
            raise ValueError("data already complete")
        if self._at_line_start and complete and chunk == b".\r\n":
            self.done = True  # RFC 5321 §4.1.1.4: only CRLF "." CRLF ends the data
            return
        if self._at_line_start and chunk.startswith(b"."):
            chunk = chunk[1:]  # RFC 5321 §4.5.2: remove one leading dot (transparency)
        if self._pending_cr:
            # A piece ended with CR; it was a CRLF only if this piece is exactly the LF.
            self._pending_cr = False
            if complete and chunk == b"\n":
                self._append(b"\r\n")
                self._at_line_start = True
                return
            self.bare_cr_lf = True
            self._append(b"\r")
        if complete:
            if chunk.endswith(b"\r\n"):
                content, eol = chunk[:-2], b"\r\n"
            else:
                content, eol = chunk[:-1], b"\r\n"
                self.bare_cr_lf = True  # bare LF
        else:
            content, eol = chunk, b""
            if content.endswith(b"\r"):
                content = content[:-1]
                self._pending_cr = True
        if b"\r" in content or b"\n" in content:
            self.bare_cr_lf = True  # bare CR inside the line
        if not self.eight_bit and not content.isascii():
            self.eight_bit = True
        self._append(content + eol)
        self._at_line_start = complete

    def feed_lines(self, data: bytes) -> None:
        """Lines as read, the last one possibly a piece (not ending in LF): the same as feed() of
        each line, but runs of ordinary lines (CRLF only, none starting with a dot) are taken at
        once. The data must not go past the end of the data (".\r\n" at a line start)."""
        pos, end = 0, len(data)
        while pos < end:
            if self.done:
                raise ValueError("data after the end of the data")
            if self._at_line_start and not self._pending_cr and data[pos : pos + 1] != b".":
                # Up to the next line that starts with a dot (or the end), complete lines only.
                dot = data.find(b"\n.", pos)
                stop = data.rfind(b"\n", pos, end if dot < 0 else dot + 1) + 1
                if stop > pos:
                    run = data[pos:stop]
                    n = run.count(b"\n")
                    if run.count(b"\r\n") == n and run.count(b"\r") == n:
                        # No bare CR or LF, no dot-stuffing, no end: appended as it is.
                        if not self.eight_bit and not run.isascii():
                            self.eight_bit = True
                        self._append(run)
                    else:
                        while pos < stop:  # line by line; all complete (the run ends in LF)
                            nl = data.find(b"\n", pos)
                            self.feed(data[pos : nl + 1], True)
                            pos = nl + 1
                    pos = stop
                    continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self.feed(data[pos:], False)
                return
            self.feed(data[pos : nl + 1], True)
            pos = nl + 1

    def _append(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            self.too_big = True  # keep reading to the end, but stop keeping the data
            self._out.clear()
            return
        self._out += data

    def result(self) -> bytes:
        return bytes(self._out)
