"""The load generator: raw SMTP and IMAP over loopback with asyncio, bounded in count and time.

Every run has a deadline and a budget (messages or operations); when either runs out, the clients
finish the command in flight and stop. Each client connects from its own loopback source address
(127.0.0.0/8 is all loopback), one per /21, so per-IP connection limits of a server do not turn
a benchmark into a rate-limit test.
"""

from __future__ import annotations

import asyncio
import random
import re
import resource
import time
from dataclasses import dataclass, field

from bench.mail import make_message, smtp_payload

__all__ = [
    "Budget",
    "ImapClient",
    "LoadResult",
    "ProtocolError",
    "run_imap_mixed",
    "run_smtp",
    "source_ip",
]

HOST = "127.0.0.1"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")
_EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.MULTILINE)


class ProtocolError(Exception):
    """A server answered something the load does not expect (a benchmark must not go on)."""


def source_ip(k: int) -> str:
    """The k-th client source address: each in its own /21 of 127.0.0.0/8."""
    k %= 32 * 250
    return f"127.{1 + k // 32}.{(k % 32) * 8}.1"


def cpu_self() -> float:
    """CPU seconds (user + system) used by this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Budget:
    """At most `count` units of work until `deadline` (time.monotonic())."""

    count: int
    deadline: float
    taken: int = 0

    def take(self) -> bool:
        if self.taken >= self.count or time.monotonic() >= self.deadline:
            return False
        self.taken += 1
        return True


@dataclass
class LoadResult:
    done: int = 0
    elapsed: float = 0.0  # seconds from the first connection to the last acknowledgement
    gen_cpu: float = 0.0  # CPU seconds of the generator process during the run
    per_kind: dict[str, int] = field(default_factory=dict)
    last_ack: float = 0.0
    started: float = 0.0  # time.monotonic() at the start

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


async def _open(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(10):
        return await asyncio.open_connection(HOST, port, local_addr=(source, 0), limit=1 << 20)


# SMTP


async def _smtp_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One reply, multi-line ones included (RFC 5321 §4.2.1)."""
    text = b""
    while True:
        line = await reader.readline()
        if not line:
            raise ProtocolError("SMTP connection closed")
        text += line
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), text


async def _smtp_expect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cmd: bytes | None, code: int
) -> None:
    if cmd is not None:
        writer.write(cmd)
    got, text = await _smtp_reply(reader)
    if got != code:
        raise ProtocolError(f"SMTP {cmd!r}: expected {code}, got {text!r}")


async def _smtp_client(
    port: int, source: str, rcpt: str, payload: bytes, budget: Budget, res: LoadResult
) -> None:
    reader, writer = await _open(port, source)
    try:
        await _smtp_expect(reader, writer, None, 220)
        await _smtp_expect(reader, writer, b"EHLO client.example.org\r\n", 250)
        while budget.take():
            await _smtp_expect(reader, writer, b"MAIL FROM:<bench@example.org>\r\n", 250)
            await _smtp_expect(reader, writer, f"RCPT TO:<{rcpt}>\r\n".encode(), 250)
            await _smtp_expect(reader, writer, b"DATA\r\n", 354)
            await _smtp_expect(reader, writer, payload, 250)
            res.done += 1
            res.last_ack = time.monotonic()
        writer.write(b"QUIT\r\n")
        await _smtp_reply(reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def run_smtp(
    port: int,
    rcpt: str,
    *,
    connections: int,
    size: int,
    seconds: float,
    max_messages: int,
    first_source: int = 0,
) -> LoadResult:
    """`connections` clients each send messages of `size` bytes over one connection, one after
    another, until the budget or the time runs out; done = messages acknowledged with 250."""
    payload = smtp_payload(make_message(1, size, rcpt))
    res = LoadResult()
    cpu0 = cpu_self()
    t0 = res.started = time.monotonic()
    budget = Budget(max_messages, t0 + seconds)
    clients = [
        _smtp_client(port, source_ip(first_source + k), rcpt, payload, budget, res)
        for k in range(connections)
    ]
    await asyncio.wait_for(asyncio.gather(*clients), seconds + 60)
    res.elapsed = (res.last_ack or time.monotonic()) - t0
    res.gen_cpu = cpu_self() - cpu0
    return res


# IMAP


class ImapClient:
    """A minimal IMAP client: one command at a time, literals in responses read by count."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.n = 0

    @classmethod
    async def connect(cls, port: int, source: str) -> ImapClient:
        reader, writer = await _open(port, source)
        client = cls(reader, writer)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            writer.close()
            raise ProtocolError(f"IMAP greeting {greeting!r}")
        return client

    async def _read_until(self, tag: bytes) -> bytes:
        buf = bytearray()
        while True:
            line = await self.reader.readline()
            if not line:
                raise ProtocolError("IMAP connection closed")
            buf += line
            m = _LITERAL.search(line)
            if m is not None:
                buf += await self.reader.readexactly(int(m.group(1)))
                continue
            if line.startswith(tag):
                status = line[len(tag) : len(tag) + 3]
                if status != b"OK ":
                    raise ProtocolError(f"IMAP: {bytes(buf[-300:])!r}")
                return bytes(buf)

    def _tag(self) -> bytes:
        self.n += 1
        return b"a%d " % self.n

    async def cmd(self, text: str, literal: bytes | None = None) -> bytes:
        """Run one command; the whole response, ProtocolError unless it ends in OK."""
        tag = self._tag()
        if literal is None:
            self.writer.write(tag + text.encode() + b"\r\n")
        else:  # RFC 7888 LITERAL+: no wait for a continuation
            self.writer.write(
                tag + text.encode() + b" {%d+}\r\n" % len(literal) + literal + b"\r\n"
            )
        return await self._read_until(tag)

    async def idle(self) -> None:
        """IDLE (RFC 2177), then DONE as soon as the server says it is idling."""
        tag = self._tag()
        self.writer.write(tag + b"IDLE\r\n")
        while True:
            line = await self.reader.readline()
            if not line:
                raise ProtocolError("IMAP connection closed in IDLE")
            if line.startswith(b"+"):
                break
            if line.startswith(tag):
                raise ProtocolError(f"IDLE refused: {line!r}")
        self.writer.write(b"DONE\r\n")
        await self._read_until(tag)

    async def start_idle(self) -> None:
        """Enter IDLE and stay there (for idle-connection memory)."""
        tag = self._tag()
        self.writer.write(tag + b"IDLE\r\n")
        line = await self.reader.readline()
        if not line.startswith(b"+"):
            raise ProtocolError(f"IDLE refused: {line!r}")

    async def login(self, user: str, password: str) -> None:
        await self.cmd(f'LOGIN "{user}" "{password}"')

    async def select(self, mailbox: str = "INBOX") -> int:
        resp = await self.cmd(f'SELECT "{mailbox}"')
        m = _EXISTS.search(resp)
        return int(m.group(1)) if m else 0

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

    async def logout(self) -> None:
        try:
            await asyncio.wait_for(self.cmd("LOGOUT"), 5)
        except (ProtocolError, OSError, TimeoutError):
            pass
        await self.close()


async def _imap_client(
    port: int,
    k: int,
    clients: int,
    user: str,
    password: str,
    budget: Budget,
    res: LoadResult,
    relogin_every: int,
) -> None:
    """One client of the mixed load: a cycle of SELECT, FETCH headers, FETCH a body, STORE,
    APPEND, STORE \\Deleted + UID EXPUNGE of what it appended, IDLE; it logs out and in again
    every `relogin_every` cycles. The mailbox keeps its size (one in, one out per cycle)."""
    rng = random.Random(k)
    append = make_message(10_000 + k, 4096, user)
    session = 0
    while budget.taken < budget.count and time.monotonic() < budget.deadline:
        client = await ImapClient.connect(port, source_ip(k + clients * session))
        session += 1
        try:
            if not budget.take():
                return
            await client.login(user, password)
            _count(res, "login")
            for _ in range(relogin_every):
                if not budget.take():
                    return
                exists = await client.select()
                _count(res, "select")
                hi = max(exists, 1)
                lo = max(1, hi - 9)
                ops = [
                    ("fetch_headers", f"FETCH {lo}:{hi} (FLAGS BODY.PEEK[HEADER])"),
                    ("fetch_body", f"FETCH {rng.randint(1, hi)} BODY.PEEK[]"),
                    ("store", f"STORE {rng.randint(1, hi)} +FLAGS (\\Seen)"),
                ]
                for kind, command in ops:
                    if not budget.take():
                        return
                    await client.cmd(command)
                    _count(res, kind)
                if not budget.take():
                    return
                resp = await client.cmd('APPEND "INBOX" (\\Seen)', append)
                _count(res, "append")
                m = _APPENDUID.search(resp)
                if m is None:
                    raise ProtocolError(f"APPEND without APPENDUID: {resp!r}")
                uid = int(m.group(1))
                if not budget.take():
                    return
                await client.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
                _count(res, "store")
                if not budget.take():
                    return
                await client.cmd(f"UID EXPUNGE {uid}")
                _count(res, "expunge")
                if not budget.take():
                    return
                await client.idle()
                _count(res, "idle")
                res.last_ack = time.monotonic()
            await client.cmd("LOGOUT")
        finally:
            await client.close()


def _count(res: LoadResult, kind: str) -> None:
    res.done += 1
    res.per_kind[kind] = res.per_kind.get(kind, 0) + 1


async def run_imap_mixed(
    port: int,
    users: list[str],
    password: str,
    *,
    clients: int,
    seconds: float,
    max_ops: int,
    relogin_every: int = 10,
) -> LoadResult:
    """`clients` clients, client k working in users[k]'s INBOX, until budget or time run out."""
    res = LoadResult()
    cpu0 = cpu_self()
    t0 = res.started = time.monotonic()
    budget = Budget(max_ops, t0 + seconds)
    tasks = [
        _imap_client(port, k, clients, users[k], password, budget, res, relogin_every)
        for k in range(clients)
    ]
    await asyncio.wait_for(asyncio.gather(*tasks), seconds + 60)
    res.elapsed = time.monotonic() - t0
    res.gen_cpu = cpu_self() - cpu0
    return res
