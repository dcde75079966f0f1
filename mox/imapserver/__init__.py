"""mox.imapserver: the asyncio IMAP server (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1).

It drives the sans-IO core in ``mox.imap`` and serves the accounts of ``mox.store``. Modules by
command family: ``session`` (loop, boundary, dispatch table, any-state and login commands),
``mailboxes``, ``fetch``, ``search``, ``messages`` (STORE/COPY/EXPUNGE/CLOSE/UNSELECT), ``append``,
``idle``; ``selected`` is a session's view of its selected mailbox, ``message`` the MIME structure.
"""

from mox.imapserver.server import start_imap_server, stop_imap_server

__all__ = ["start_imap_server", "stop_imap_server"]
