"""Fixtures for the IMAP server tests: a real Store in tmp_path, the real server on 127.0.0.1 with a
free port, a tiny Authenticator, a raw transcript client and TLS material from trustme."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme

from mox.auth.password import Credentials, derive_credentials
from mox.imapserver import start_imap_server, stop_imap_server
from mox.store import Account, Store

USER = "mjl@mox.example"
PASSWORD = "test1234"

MESSAGE = (
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


class DictAuthenticator:
    """The Authenticator protocol (mox.auth.login) backed by a dict user -> password; every user
    maps to the account "mjl". ``credentials`` derives the SCRAM/CRAM-MD5 secrets from the
    password (as the config-backed implementation stores them); ``throttled_ips`` simulates IPs
    over the failed-login limit."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.calls: list[tuple[str, str]] = []
        self.concluded: list[tuple[str, bool]] = []
        self.throttled_ips: set[str] = set()
        self._creds: dict[str, Credentials] = {}

    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        self.calls.append((username, protocol))
        if self.users.get(username) == password:
            return "mjl"
        return None

    def throttled(self, remote_ip: str) -> bool:
        return remote_ip in self.throttled_ips

    def credentials(self, username: str) -> Credentials | None:
        password = self.users.get(username)
        if password is None:
            return None
        if username not in self._creds:
            self._creds[username] = derive_credentials(password)
        return self._creds[username]

    async def conclude(
        self, username: str, ok: bool, *, remote_ip: str, protocol: str
    ) -> str | None:
        self.concluded.append((username, ok))
        return "mjl" if ok and username in self.users else None


@dataclass
class ImapServer:
    port: int
    store: Store
    account: Account
    authenticator: DictAuthenticator
    server: asyncio.Server
    client_ssl: ssl.SSLContext | None = None
    transcripts: list[Transcript] = field(default_factory=list)

    async def transcript(self, *, tls: bool = False, login: bool = False) -> Transcript:
        ctx = self.client_ssl if tls else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=ctx, server_hostname="127.0.0.1" if ctx else None
        )
        tc = Transcript(reader, writer)
        self.transcripts.append(tc)
        tc.greeting = await tc.read_response()
        if login:
            await tc.transact(f"l0 LOGIN {USER} {PASSWORD}")
        return tc


class Transcript:
    """A raw IMAP client: send a command line, collect untagged responses, check the tagged one.

    ``await tc.transact("a1 CREATE INBOX", "NO")`` returns the untagged lines (literals inlined);
    ``tc.last`` is the tagged line.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""
        self.last = b""

    async def read_response(self, timeout: float = 10.0) -> bytes:
        out = b""
        while True:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
            m = re.search(rb"~?\{(\d+)\}\r\n\Z", line)
            if m:
                out += line + await self.reader.readexactly(int(m.group(1)))
                continue
            return out + line[:-2]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def transact(self, line: str | bytes, status: str = "OK") -> list[bytes]:
        raw = line.encode() if isinstance(line, str) else line
        await self.send(raw + b"\r\n")
        return await self.until_tagged(raw.split(b" ", 1)[0], status)

    async def until_tagged(self, tag: bytes, status: str = "OK") -> list[bytes]:
        untagged: list[bytes] = []
        while True:
            resp = await self.read_response()
            if resp.startswith(tag + b" "):
                self.last = resp
                got = resp.split(b" ")[1].decode()
                assert got == status, (resp, untagged)
                return untagged
            untagged.append(resp)

    async def read_until_closed(self, timeout: float = 10.0) -> bytes:
        """Everything the server sends until it closes the connection."""
        out = b""
        try:
            while data := await asyncio.wait_for(self.reader.read(65536), timeout):
                out += data
        except (ConnectionError, ssl.SSLError):
            pass
        return out

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl(tls_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ssl(tls_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    tls_ca.configure_trust(ctx)
    return ctx


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data")
    try:
        yield s
    finally:
        await s.aclose()


StartServer = Callable[..., Awaitable[ImapServer]]


@pytest.fixture
async def start_server(
    store: Store, server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> AsyncIterator[StartServer]:
    started: list[ImapServer] = []

    async def start(**kwargs: Any) -> ImapServer:
        auth = DictAuthenticator({USER: PASSWORD})
        tls_kind = kwargs.pop("tls", None)
        options: dict[str, Any] = {
            "ssl_context": server_ssl if tls_kind else None,
            "implicit_tls": tls_kind == "implicit",
            "require_starttls": False,
        }
        options.update(kwargs)
        server = await start_imap_server(
            host="127.0.0.1",
            port=0,
            store=store,
            authenticator=auth,
            hostname="mox.example",
            **options,
        )
        port = server.sockets[0].getsockname()[1]
        info = ImapServer(port, store, store.account("mjl"), auth, server, client_ssl)
        started.append(info)
        return info

    try:
        yield start
    finally:
        for info in started:
            for tc in info.transcripts:
                await tc.close()
            await stop_imap_server(info.server)


@pytest.fixture
async def imap(start_server: StartServer) -> ImapServer:
    """A plain server like localserve's: no TLS, login allowed."""
    return await start_server()
