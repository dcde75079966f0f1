"""A trivial SMTP and IMAP server that does no work, to show the load generator's own ceiling:
`python -m bench.nullserver SMTP_PORT IMAP_PORT` (runs until killed).

SMTP: 220, 250 to every command, 354 to DATA and 250 after the terminating dot. IMAP: a
canned answer per command (a 4 KiB literal for FETCH, APPENDUID for APPEND, "+ idling" for IDLE).
"""

from __future__ import annotations

import asyncio
import sys

_BODY = b"x" * 4094 + b"\r\n"


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 null ESMTP\r\n")
    while line := await reader.readline():
        cmd = line[:4].upper()
        if cmd == b"DATA":
            writer.write(b"354 go\r\n")
            while await reader.readline() not in (b".\r\n", b""):
                pass
            writer.write(b"250 ok\r\n")
        elif cmd == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"250 ok\r\n")
    writer.close()


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"* OK null IMAP\r\n")
    while line := await reader.readline():
        tag, _, rest = line.partition(b" ")
        cmd = rest.split(b" ", 1)[0].upper().strip()
        if rest.upper().startswith(b"UID "):
            cmd = rest.split(b" ", 2)[1].upper().strip()
        if line.rstrip().endswith(b"+}"):  # LITERAL+: the literal follows at once
            n = int(line.rstrip()[line.rindex(b"{") + 1 : -2])
            await reader.readexactly(n + 2)
        if cmd == b"IDLE":
            writer.write(b"+ idling\r\n")
            await reader.readline()
        elif cmd == b"SELECT":
            writer.write(b"* 100 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n")
        elif cmd == b"FETCH":
            writer.write(b"* 1 FETCH (FLAGS () BODY[] {%d}\r\n%s)\r\n" % (len(_BODY), _BODY))
        elif cmd == b"APPEND":
            writer.write(tag + b" OK [APPENDUID 1 101] done\r\n")
            continue
        writer.write(tag + b" OK done\r\n")
        if cmd == b"LOGOUT":
            break
    writer.close()


async def main(smtp_port: int, imap_port: int) -> None:
    s1 = await asyncio.start_server(smtp, "127.0.0.1", smtp_port)
    s2 = await asyncio.start_server(imap, "127.0.0.1", imap_port)
    async with s1, s2:
        await asyncio.gather(s1.serve_forever(), s2.serve_forever())


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
