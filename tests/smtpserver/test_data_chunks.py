"""DATA read in runs of lines (server.read_data, DataReader.feed_lines) ends and decodes exactly as
line by line did: same end of the data (smuggling variants included), same message, same flags,
and the same bytes left for the next command; with any stream limit and any arrival pattern."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.smtp.data import DataReader
from mox.smtpserver.server import read_data

PIECES = [b"a", b"b\xc3\xa9", b"\r\n", b"\n", b"\r", b".", b"..", b".\r\n", b"\r\n.\r\n", b"\x00"]
PIECES += [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"x" * 40]


@dataclass(frozen=True)
class Outcome:
    done: bool
    result: bytes
    size: int
    too_big: bool
    bare_cr_lf: bool
    eight_bit: bool
    left: bytes


async def stream_of(data: bytes, limit: int, arrivals: list[int]) -> asyncio.StreamReader:
    stream = asyncio.StreamReader(limit=limit)

    async def feed() -> None:
        pos = 0
        for n in arrivals:  # the data arrives in parts, as from a socket
            stream.feed_data(data[pos : pos + n])
            pos += n
            await asyncio.sleep(0)
        stream.feed_data(data[pos:])
        stream.feed_eof()

    asyncio.get_running_loop().create_task(feed())
    await asyncio.sleep(0)
    return stream


async def line_by_line(stream: asyncio.StreamReader, reader: DataReader) -> None:
    """How the server read DATA before read_data: a line at a time, long lines in pieces."""
    while not reader.done:
        try:
            line = await stream.readuntil(b"\n")
            complete = True
        except asyncio.LimitOverrunError as e:
            line = await stream.readexactly(max(1, e.consumed))
            complete = False
        reader.feed(line, complete)


async def outcome(
    data: bytes, limit: int, max_size: int, arrivals: list[int], new: bool
) -> Outcome:
    stream = await stream_of(data, limit, arrivals)
    reader = DataReader(max_size)
    try:
        if new:
            await read_data(stream, reader, lambda: None)
        else:
            await line_by_line(stream, reader)
    except asyncio.IncompleteReadError:
        pass  # the connection closed before the end: the server gives up either way
    return Outcome(
        reader.done,
        reader.result(),
        reader.size,
        reader.too_big,
        reader.bare_cr_lf,
        reader.eight_bit,
        await stream.read(),
    )


@given(
    body=st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join),
    end=st.booleans(),
    limit=st.integers(3, 120),
    max_size=st.sampled_from([20, 200, 100_000]),
    arrivals=st.lists(st.integers(1, 50), max_size=8),
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_runs_of_lines_same_as_line_by_line(
    body: bytes, end: bool, limit: int, max_size: int, arrivals: list[int]
) -> None:
    # The next command after the data (pipelined) must stay in the stream, untouched.
    data = body + (b"\r\n.\r\n" if end else b"") + b"QUIT\r\n"

    async def both() -> tuple[Outcome, Outcome]:
        old = await outcome(data, limit, max_size, arrivals, new=False)
        new = await outcome(data, limit, max_size, arrivals, new=True)
        return old, new

    old, new = asyncio.run(both())
    if old.done:
        assert new == old
    else:  # the connection closed within the data: nothing is kept either way
        assert not new.done


def test_runs_of_lines_cases() -> None:
    def read(data: bytes, limit: int = 1000) -> Outcome:
        return asyncio.run(outcome(data, limit, 1000, [], new=True))

    got = read(b"a.\r\n..b\r\nc\r\n.\r\nQUIT\r\n")
    assert got.done
    assert got.result == b"a.\r\n.b\r\nc\r\n"
    assert got.left == b"QUIT\r\n"
    got = read(b"a\n.\r\nsmuggled\r\n.\r\n")  # ends at the bare-LF dot line, flagged
    assert got.done
    assert got.bare_cr_lf
    assert got.left == b"smuggled\r\n.\r\n"
    got = read(b"x" * 50 + b"\r\n.\r\n", limit=8)  # longer than the limit: in pieces
    assert got.done
    assert got.result == b"x" * 50 + b"\r\n"
    assert not got.bare_cr_lf
    got = read(b".\r\n")
    assert got.done
    assert got.result == b""
    assert got.left == b""
