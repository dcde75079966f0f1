"""The asyncio side of one IMAP connection: a Protocol with an input buffer and flow control.

Implementation notes:
- We use a Protocol rather than streams so that STARTTLS can drop every plaintext byte received
  after the command (RFC 9051 §6.2.1, RFC 3207 §6 command injection) before ``loop.start_tls`` swaps
  the protocol; with StreamReader, data already buffered would survive the upgrade.
- Reading pauses when more than ``HIGH_WATER`` bytes are buffered and resumes when the session takes
  them, so a client that pipelines faster than we execute cannot make us buffer without bound.
- ``read()`` only waits and then takes the buffer synchronously: cancelling a waiting read (IDLE
  waits for input or a mailbox change) loses nothing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final

HIGH_WATER: Final = 256 * 1024


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

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError("IMAP needs a stream transport")
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self._on_connect(self)

    def data_received(self, data: bytes) -> None:
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

    async def wait_readable(self) -> None:
        """Wait until data or EOF is available (cancellable without loss)."""
        while not self._buf and not self._eof:
            self._readable.clear()
            await self._readable.wait()

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

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the write buffer is above its high-water mark."""
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
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
