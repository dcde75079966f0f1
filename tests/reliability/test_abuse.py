"""Abuse limits over real sockets, against the whole server (SMTP and IMAP listeners of one config).

- 1,000 wrong passwords from one address (127.0.0.2; all of 127.0.0.0/8 is loopback, so the
  client binds its source address) are throttled — refused at connect once the per-IP-class
  failure limit is reached, so almost none of them cost a password check — while a legitimate
  user from another network logs in normally, over SMTP AUTH and over IMAP LOGIN. The attempts
  run concurrently over many connections, so the 1 s delay on each checked failure
  (mox.server.authenticator.FAILURE_DELAY) does not add up.
  The legitimate address is 127.0.64.3, outside the attacker's /21: failures count against the
  attacker's /32, /26 and /21 at once (as mox), so a neighbour in the same /26 or /21 (e.g.
  127.0.0.3) is throttled along with it by design.
- Connection floods over the per-IP-class limits (30 concurrent per /32, 90 per /26; 300 new a
  minute per /32) get 421 on SMTP and BYE on IMAP, which share one limiter; another network is
  still served.
Size limits for SMTP messages (tests/smtpserver/test_data.py), IMAP literals
(tests/imapserver/test_session.py) and STARTTLS injection (tests/smtpserver/test_smtp.py,
tests/imapserver/test_tls.py) are tested where the servers are.
"""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.serverthread import PASSWORD, ServerThread, start_server

pytestmark = [pytest.mark.slow]

Server = tuple[ServerThread, dict[str, int]]
Attempt = Callable[[int, str, ssl.SSLContext, str], str]

ATTACKER = "127.0.0.2"
LEGIT = "127.0.64.3"  # another /21
ATTEMPTS = 1000
WORKERS = 25


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    srv, ports = start_server(tmp_path, ca)
    yield srv, ports
    srv.stop()


def tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


class SourceIMAPS(imaplib.IMAP4_SSL):
    """IMAPS from a chosen loopback source address."""

    def __init__(self, port: int, *, source: str, ctx: ssl.SSLContext) -> None:
        self._source = source
        super().__init__("127.0.0.1", port, ssl_context=ctx, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )
        wrapped: ssl.SSLSocket = self.ssl_context.wrap_socket(sock, server_hostname="localhost")
        return wrapped


def smtp_attempt(port: int, src: str, ctx: ssl.SSLContext, password: str) -> str:
    """One connection, one AUTH PLAIN: "ok", "535" (checked and failed) or "421" (refused)."""
    try:
        with smtplib.SMTP_SSL(
            "127.0.0.1", port, timeout=30, context=ctx, source_address=(src, 0)
        ) as c:
            c.login("alice@example.test", password)
            return "ok"
    except (smtplib.SMTPConnectError, smtplib.SMTPAuthenticationError) as exc:
        return str(exc.smtp_code)  # the tests check which codes came back


def imap_attempt(port: int, src: str, ctx: ssl.SSLContext, password: str) -> str:
    """One connection, one LOGIN: "ok", "NO" (checked and failed) or "BYE" (refused)."""
    try:
        c = SourceIMAPS(port, source=src, ctx=ctx)
    except imaplib.IMAP4.error as exc:  # imaplib raises on a BYE greeting
        return "BYE" if "* BYE too many" in str(exc) else f"unexpected: {exc}"
    try:
        c.login("alice@example.test", password)
        return "ok"
    except imaplib.IMAP4.error as exc:
        known = "AUTHENTICATIONFAILED" in str(exc) or "UNAVAILABLE" in str(exc)
        return "NO" if known else f"unexpected: {exc}"
    finally:
        try:
            c.shutdown()
        except OSError:
            pass


def attack(attempt: Attempt, port: int, ctx: ssl.SSLContext) -> Counter[str]:
    """ATTEMPTS wrong passwords from ATTACKER over WORKERS concurrent connection loops."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 90

    def worker() -> None:
        for _ in range(ATTEMPTS // WORKERS):
            if time.monotonic() > deadline:
                return
            result = attempt(port, ATTACKER, ctx, "wrong-password")
            with lock:
                outcomes[result] += 1

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    return outcomes


def test_smtp_auth_thousand_wrong_passwords_throttled(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    ctx = tls(ca)
    started = time.monotonic()
    outcomes = attack(smtp_attempt, ports["submissions"], ctx)
    assert sum(outcomes.values()) == ATTEMPTS, outcomes
    assert set(outcomes) <= {"421", "535"}, outcomes
    # Default limit: 10 failures a minute per /32. Checked failures beyond that are only those
    # already past the connect-time check (at most one per worker).
    assert outcomes["535"] <= 10 + WORKERS, outcomes
    assert outcomes["421"] >= ATTEMPTS - 10 - WORKERS, outcomes
    # The right password from the attacker's address is refused too: the IP is throttled.
    assert smtp_attempt(ports["submissions"], ATTACKER, ctx, PASSWORD) == "421"
    # A legitimate user elsewhere is not affected, over SMTP and IMAP.
    assert smtp_attempt(ports["submissions"], LEGIT, ctx, PASSWORD) == "ok"
    assert imap_attempt(ports["imaps"], LEGIT, ctx, PASSWORD) == "ok"
    print(f"smtp: {outcomes} in {time.monotonic() - started:.1f}s")


def test_imap_login_thousand_wrong_passwords_throttled(server: Server, ca: trustme.CA) -> None:
    _, ports = server
    ctx = tls(ca)
    started = time.monotonic()
    outcomes = attack(imap_attempt, ports["imaps"], ctx)
    assert sum(outcomes.values()) == ATTEMPTS, outcomes
    assert set(outcomes) <= {"BYE", "NO"}, outcomes
    assert outcomes["NO"] <= 10 + WORKERS, outcomes
    assert outcomes["BYE"] >= ATTEMPTS - 10 - WORKERS, outcomes
    assert imap_attempt(ports["imaps"], ATTACKER, ctx, PASSWORD) == "BYE"
    assert imap_attempt(ports["imaps"], LEGIT, ctx, PASSWORD) == "ok"
    assert smtp_attempt(ports["submissions"], LEGIT, ctx, PASSWORD) == "ok"
    print(f"imap: {outcomes} in {time.monotonic() - started:.1f}s")


def greeting(port: int, src: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    return sock, sock.makefile("rb").readline()


def test_connection_flood_per_ip_class_smtp_421_imap_bye(server: Server) -> None:
    _, ports = server
    held: list[socket.socket] = []
    try:
        # 3 addresses of 127.0.0.0/26, 30 connections each: the /26 is full (90).
        for host in (10, 11, 12):
            for i in range(30):
                port = ports["smtp"] if i % 2 else ports["imap"]
                sock, line = greeting(port, f"127.0.0.{host}")
                held.append(sock)
                assert line.startswith(b"220 " if i % 2 else b"* OK"), line
        # The 31st from an address already holding 30: refused.
        sock, line = greeting(ports["smtp"], "127.0.0.10")
        sock.close()
        assert line.startswith(b"421 4.7.0 too many connections"), line
        # A fresh address in the same /26: refused by the /26 limit, on SMTP and IMAP alike.
        sock, line = greeting(ports["smtp"], "127.0.0.13")
        sock.close()
        assert line.startswith(b"421 4.7.0"), line
        sock, line = greeting(ports["imap"], "127.0.0.13")
        sock.close()
        assert line.startswith(b"* BYE too many connections"), line
        # Another /26 of the same /21 is still served.
        sock, line = greeting(ports["smtp"], "127.0.0.70")
        sock.close()
        assert line.startswith(b"220 "), line
    finally:
        for s in held:
            s.close()


def test_connection_rate_limit(server: Server) -> None:
    _, ports = server
    src = "127.0.32.7"
    for i in range(300):  # 300 new connections a minute per /32 are allowed
        sock, line = greeting(ports["smtp"] if i % 2 else ports["imap"], src)
        sock.close()
        assert line.startswith(b"220 " if i % 2 else b"* OK"), (i, line)
    sock, line = greeting(ports["smtp"], src)
    sock.close()
    assert line.startswith(b"421 4.7.0"), line
    sock, line = greeting(ports["imap"], src)
    sock.close()
    assert line.startswith(b"* BYE"), line
