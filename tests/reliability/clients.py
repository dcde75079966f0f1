"""Client helpers for the reliability tests: a source-address-bound imaplib client, and waiting
for a `mox serve` subprocess to listen."""

from __future__ import annotations

import asyncio
import imaplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mox.store import Store

__all__ = ["SourceIMAP", "wait_listening"]


class SourceIMAP(imaplib.IMAP4):
    """imaplib.IMAP4 connecting from a chosen loopback source address (any of 127.0.0.0/8)."""

    def __init__(self, host: str, port: int, *, source: str, timeout: float) -> None:
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def wait_listening(ports: list[int], proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait until every port accepts connections; fail if the process exits first."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mox serve exited with {proc.returncode} before listening")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"mox serve did not listen on {port} in {timeout} s")
                time.sleep(0.05)


def stored_messages(data_dir: Path, account: str = "alice") -> list[bytes]:
    """The messages in an account's Inbox, read from the store after the server stopped."""

    async def read() -> list[bytes]:
        async with Store(data_dir) as store:
            acc = store.account(account)
            inbox = acc.get_mailbox("Inbox")
            assert inbox is not None
            return [acc.read_message(m) for m in acc.list_messages(inbox.id)]

    return asyncio.run(read())
