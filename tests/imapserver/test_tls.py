"""STARTTLS, implicit TLS, LOGINDISABLED and the plaintext command injection defence."""

from __future__ import annotations

import asyncio
import imaplib
import ssl

import pytest
from imapclient import IMAPClient

from mox.imapserver import start_imap_server
from mox.store import Store

from .conftest import MESSAGE, PASSWORD, USER, DictAuthenticator, StartServer


async def test_require_starttls(start_server: StartServer) -> None:
    imap = await start_server(tls="starttls", require_starttls=True)
    tc = await imap.transcript()
    assert tc.greeting.endswith(b" STARTTLS LOGINDISABLED] mox imap")
    assert b"AUTH=PLAIN" not in tc.greeting
    await tc.transact(f"a1 LOGIN {USER} {PASSWORD}", "NO")
    assert tc.last == b"a1 NO [PRIVACYREQUIRED] use STARTTLS first"  # RFC 9051 §6.2.3
    await tc.transact("a2 AUTHENTICATE PLAIN AG1qbEBtb3guZXhhbXBsZQB0ZXN0MTIzNA==", "NO")
    assert tc.last.startswith(b"a2 NO [PRIVACYREQUIRED]")
    assert imap.authenticator.calls == []  # never even checked
    await tc.transact("a3 STARTTLS")
    assert imap.client_ssl is not None
    await tc.writer.start_tls(imap.client_ssl, server_hostname="127.0.0.1")
    [caps] = await tc.transact("a4 CAPABILITY")
    assert caps.endswith(b"COMPRESS=DEFLATE AUTH=PLAIN")
    assert b" AUTH=SCRAM-SHA-256-PLUS " in caps  # a channel binding is available now
    await tc.transact("a5 STARTTLS", "BAD")  # already TLS
    await tc.transact(f"a6 LOGIN {USER} {PASSWORD}")


async def test_starttls_discards_pipelined_plaintext(start_server: StartServer) -> None:
    # RFC 9051 §6.2.1 / RFC 3207 §6: commands sent with STARTTLS, before the handshake, are dropped.
    imap = await start_server(tls="starttls")
    tc = await imap.transcript()
    await tc.send(f"a1 STARTTLS\r\nevil LOGIN {USER} {PASSWORD}\r\nevil2 CREATE pwned\r\n".encode())
    await tc.until_tagged(b"a1")
    assert imap.client_ssl is not None
    await tc.writer.start_tls(imap.client_ssl, server_hostname="127.0.0.1")
    await tc.transact("a2 SELECT Inbox", "BAD")  # not logged in
    await tc.transact(f"a3 LOGIN {USER} {PASSWORD}")
    assert imap.account.get_mailbox("pwned") is None
    assert imap.authenticator.calls == [(USER, "imap")]


async def test_starttls_not_offered_without_context(start_server: StartServer) -> None:
    imap = await start_server()
    tc = await imap.transcript()
    assert b"STARTTLS" not in tc.greeting
    await tc.transact("a1 STARTTLS", "BAD")
    await tc.transact(f"a2 LOGIN {USER} {PASSWORD}")


async def test_implicit_tls(start_server: StartServer) -> None:
    imap = await start_server(tls="implicit", require_starttls=True)
    tc = await imap.transcript(tls=True)
    assert tc.greeting.endswith(b"COMPRESS=DEFLATE AUTH=PLAIN] mox imap")
    await tc.transact(f"a1 LOGIN {USER} {PASSWORD}")


@pytest.mark.parametrize(("implicit", "require"), [(True, False), (False, True)])
async def test_tls_options_need_context(store: Store, implicit: bool, require: bool) -> None:
    with pytest.raises(ValueError, match="ssl_context"):
        await start_imap_server(
            host="127.0.0.1",
            port=0,
            store=store,
            authenticator=DictAuthenticator({}),
            hostname="x",
            ssl_context=None,
            implicit_tls=implicit,
            require_starttls=require,
        )


async def test_imaplib_starttls_and_imaps(start_server: StartServer) -> None:
    plain = await start_server(tls="starttls", require_starttls=True)
    imaps = await start_server(tls="implicit")
    await plain.account.deliver("Inbox", MESSAGE)
    ctx = plain.client_ssl

    def client() -> tuple[bytes, bytes]:
        with imaplib.IMAP4("127.0.0.1", plain.port, timeout=10) as c:
            assert "LOGINDISABLED" in c.capabilities
            c.starttls(ssl_context=ctx)
            assert "AUTH=PLAIN" in c.capabilities
            c.login(USER, PASSWORD)
            c.select("INBOX")
            _, data = c.fetch("1", "(BODY.PEEK[])")
            first = data[0]
            assert isinstance(first, tuple)
            c.logout()
        with imaplib.IMAP4_SSL("127.0.0.1", imaps.port, ssl_context=ctx, timeout=10) as c2:
            c2.login(USER, PASSWORD)
            _, data2 = c2.select("INBOX")
            c2.logout()
        return first[1], data2[0] or b""

    body, count = await asyncio.to_thread(client)
    assert body == MESSAGE
    assert count == b"1"


async def test_imapclient_starttls(start_server: StartServer) -> None:
    imap = await start_server(tls="starttls", require_starttls=True)
    ctx = imap.client_ssl
    assert isinstance(ctx, ssl.SSLContext)

    def client() -> list[str]:
        c = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
        try:
            c.starttls(ctx)
            c.login(USER, PASSWORD)
            return [name for _, _, name in c.list_folders()]
        finally:
            c.logout()

    assert "Inbox" in await asyncio.to_thread(client)
