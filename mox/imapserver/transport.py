"""The asyncio side of one IMAP connection: a Protocol with an input buffer and flow control.

Implementation notes:
- We use a Protocol rather than streams so that STARTTLS can drop every plaintext byte received
  after the command (RFC 9051 §6.2.1, RFC 3207 §6 command injection) before ``loop.start_tls`` swaps
  the protocol; with StreamReader, data already buffered would survive the upgrade.
- Reading pauses when more than ``HIGH_WATER`` bytes are buffered and resumes when the session takes
  them, so a client that pipelines faster than we execute cannot make us buffer without bound.
- ``read()`` only waits and then takes the buffer synchronously: cancelling a waiting read (IDLE
  waits for input or a mailbox change) loses nothing.
- Output is collected and handed to the socket at ``flush`` (called by ``drain``, ``close`` and
  before waiting for input), or as soon as more than ``OUTPUT_CHUNK`` bytes are pending: a command's
  untagged and tagged responses leave in one write instead of one per line (bench/PROFILE.md).
- COMPRESS=DEFLATE (RFC 4978): after ``start_compress`` input is inflated as it arrives and output
  is deflated at ``flush``, ending each flush with a sync flush (RFC 4978 §4: the peer must be able
  to decode all we sent so far), so a response is never stuck in the compressor. Raw deflate, no
  zlib header (RFC 1951).
- ``interrupt`` (server shutdown) wakes an interruptible ``wait_readable`` without input.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Callable
from typing import Final, cast

HIGH_WATER: Final = 256 * 1024
OUTPUT_CHUNK: Final = 64 * 1024


class Transport(asyncio.Protocol):
    """See the module docstring."""

    def __init__(self, on_connect: Callable[[Transport], None]) -> None:
        self._on_connect = on_connect
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._readable = asyncio.Event()
        self._eof = False
        self._paused_reading = False
        self._write_waiter: asyncio.Future[None] | None = None
        self._paused_writing = False
        self.peer: tuple[str, int] | None = None
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._interrupted = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (create_server); uvloop's have asyncio.Transport's methods without
        # being its subclasses, so no isinstance check.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                self._eof = True
                self._readable.set()
                self.close()
                return
        self._buf += data
        self._readable.set()
        if len(self._buf) > HIGH_WATER and not self._paused_reading and self.transport:
            self._paused_reading = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._readable.set()
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_exception(ConnectionResetError("connection lost"))

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._write_waiter is not None and not self._write_waiter.done():
            self._write_waiter.set_result(None)

    # --- used by the session ---

    @property
    def remote_ip(self) -> str:
        return self.peer[0] if self.peer else ""

    @property
    def at_eof(self) -> bool:
        return self._eof and not self._buf

    async def wait_readable(self, *, interruptible: bool = False) -> None:
        """Wait until data or EOF is available (cancellable without loss); pending output is sent
        first. With interruptible, ``interrupt`` ends the wait too."""
        self.flush()
        while not self._buf and not self._eof and not (interruptible and self._interrupted):
            self._readable.clear()
            await self._readable.wait()

    def interrupt(self) -> None:
        """Wake interruptible waits, now and later (the server is shutting down)."""
        self._interrupted = True
        self._readable.set()

    def take(self) -> bytes:
        """All buffered input (b"" if none)."""
        data = bytes(self._buf)
        self._buf.clear()
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    async def read(self) -> bytes:
        """The next input; b"" at end of file."""
        await self.wait_readable()
        return self.take()

    def discard_pending(self) -> None:
        """Drop buffered input (after STARTTLS)."""
        self.take()

    @property
    def compressed(self) -> bool:
        return self._deflate is not None

    def start_compress(self) -> None:
        """Switch both directions to raw DEFLATE (RFC 4978 §3)."""
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        if self._buf:  # sent by the client after our OK, already compressed
            raw, self._buf = bytes(self._buf), bytearray()
            self.data_received(raw)

    def write(self, data: bytes) -> None:
        """Queue output; it is sent at the next flush (or now, when much is queued)."""
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size > OUTPUT_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Send (deflated, after COMPRESS) what was written since the last flush."""
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out = []
        self._out_size = 0
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    @property
    def write_blocked(self) -> bool:
        """The socket's write buffer is over its high-water mark (``drain`` would wait), or the
        connection is gone (``drain`` raises)."""
        return self._paused_writing or self.transport is None or self.transport.is_closing()

    async def drain(self) -> None:
        """Send pending output; wait while the write buffer is above its high-water mark."""
        self.flush()
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._paused_writing:
            loop = asyncio.get_running_loop()
            self._write_waiter = loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None

    async def start_tls(self, context: ssl.SSLContext, handshake_timeout: float) -> None:
        """Upgrade to TLS in place (server side)."""
        if self.transport is None:
            raise ConnectionResetError("not connected")
        loop = asyncio.get_running_loop()
        self.discard_pending()
        new = await loop.start_tls(
            self.transport, self, context, server_side=True, ssl_handshake_timeout=handshake_timeout
        )
        if new is None:
            raise ConnectionResetError("TLS handshake failed")
        self.transport = new

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
