"""A line-based SMTP transcript client and helpers to read what the server stored."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from tests.serverthread import ServerThread


class Raw:
    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline().decode()
            assert line, "connection closed"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    def cmd(self, text: str | bytes) -> str:
        self.sock.sendall(text if isinstance(text, bytes) else text.encode() + b"\r\n")
        return self.reply()

    def start_tls(self, ctx: ssl.SSLContext, hostname: str) -> None:
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def stored(srv: ServerThread, account: str, mailbox: str) -> list[bytes]:
    """The messages in a mailbox, oldest first ([] when the mailbox does not exist)."""
    assert srv.running is not None
    acc = srv.running.store.account(account)

    async def read() -> list[bytes]:
        mb = acc.get_mailbox(mailbox)
        if mb is None:
            return []
        return [acc.read_message(m) for m in acc.list_messages(mb.id)]

    return srv.call(read())


def stored_meta(srv: ServerThread, account: str, mailbox: str) -> list[dict[str, Any]]:
    assert srv.running is not None
    acc = srv.running.store.account(account)

    async def read() -> list[dict[str, Any]]:
        mb = acc.get_mailbox(mailbox)
        if mb is None:
            return []
        return [acc.message_meta(m) for m in acc.list_messages(mb.id)]

    return srv.call(read())
