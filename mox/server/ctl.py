"""The control socket of a running server: `<data_dir>/ctl`, a Unix socket only the server's user
can open (mode 0600, as mox's `ctl`), so `mox reload` can ask the running server to re-read its
config and get the answer back (SIGHUP does the same work but answers nobody).

Protocol, one request per connection: the client sends a command line (`reload`); the server
answers lines: `ok` and, when some changes need a restart, `restart-needed SECTION...`; or
`refused` followed by one `FILE: key.path: message` line per problem. Unknown commands get
`error unknown command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from mox.config.load import ConfigError

__all__ = ["CTL_NAME", "MAX_PATH", "request", "start_ctl"]

log = logging.getLogger(__name__)

CTL_NAME = "ctl"
MAX_PATH = 107  # sun_path is 108 bytes on Linux, with the terminating NUL
Reload = Callable[[], Awaitable[list[str]]]


async def start_ctl(data_dir: Path, reload: Reload) -> asyncio.Server | None:
    """Listen on `<data_dir>/ctl`; None (logged) when the path is too long for a Unix socket."""
    path = data_dir / CTL_NAME
    if len(os.fsencode(path)) > MAX_PATH:
        log.warning("no control socket: path too long", extra={"path": str(path)})
        return None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a server that was killed

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode(errors="replace")
            command = line.strip()
            if command == "reload":
                try:
                    pending = await reload()
                except ConfigError as exc:
                    answer = ["refused", *exc.problems]
                else:
                    answer = ["ok"] + ([f"restart-needed {' '.join(pending)}"] if pending else [])
            else:
                answer = ["error unknown command"]
            writer.write("".join(a.replace("\n", " ") + "\n" for a in answer).encode())
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    old = os.umask(0o177)  # the socket file is created 0600
    try:
        server = await asyncio.start_unix_server(handle, path=str(path), limit=4096)
    finally:
        os.umask(old)
    return server


def request(data_dir: Path, command: str, timeout: float = 60) -> list[str]:
    """Send one command to the running server; its answer lines. OSError when no server
    listens (FileNotFoundError, ConnectionRefusedError)."""
    import socket

    path = data_dir / CTL_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").splitlines()
