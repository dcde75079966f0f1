"""IDLE (RFC 2177, RFC 9051 §6.3.13): push mailbox changes until the client sends DONE.

Implementation notes:
- After "+ idling" the sans-IO connection returns the client's next line as ``ClientLine``.
- We wait for either input or the session's ``changed`` event (set by the store's change feed) and
  send the pending untagged EXISTS/EXPUNGE/FETCH responses as soon as a change arrives. Waiting for
  input only waits; the bytes are taken synchronously afterwards, so cancelling the losing wait
  loses nothing.
- The authenticated idle timeout (30 minutes, RFC 9051 §5.4) applies while idling too; clients
  re-issue IDLE well before that.
- At server shutdown IDLE ends with BYE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mox.imap import commands as c
from mox.imap.connection import ClientLine, InvalidCommand
from mox.imap.errors import ImapBad, ImapBye
from mox.imap.receiver import NEED_DATA
from mox.imap.responses import Continuation
from mox.imapserver import common
from mox.imapserver.common import ConnectionClosed, Ok

if TYPE_CHECKING:
    from mox.imapserver.session import Session


async def idle(s: Session, cmd: c.Idle) -> Ok | None:
    s.send(Continuation("idling"))
    if s.selected is not None:
        s.flush_updates()
    await s.drain()
    while True:
        ev = s.conn.next_event()
        if isinstance(ev, ClientLine):
            if ev.data.strip().upper() == b"DONE":
                return None
            raise ImapBad("expected DONE")  # RFC 2177 §3
        if isinstance(ev, InvalidCommand):
            raise ImapBad(ev.text, ev.code)
        if ev is not NEED_DATA:
            raise ImapBad("unexpected input during IDLE")
        input_ready = await common.wait_input_or_change(s.io.wait_readable(), s.changed)
        if s.stopping:
            raise ImapBye("server shutting down")  # RFC 9051 §7.1.5
        if s.changed.is_set():
            if s.selected is not None:
                s.flush_updates()
            else:
                s.changed.clear()
        if input_ready:
            data = s.io.take()
            if not data:
                raise ConnectionClosed("end of input during IDLE")
            s.conn.receive_data(data)
        await s.drain()
