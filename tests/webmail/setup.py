"""A real mox server with an HTTPS listener for the webmail tests, and small client helpers."""

from __future__ import annotations

import email.policy
import imaplib
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import trustme

from tests.conftest import free_port
from tests.serverthread import PASSWORD, ServerThread, start_server

ALICE = "alice@example.test"
BOB = "bob@other.test"


@dataclass
class WebmailServer:
    srv: ServerThread
    ports: dict[str, int]
    ca: trustme.CA

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def http(self) -> httpx.Client:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return httpx.Client(base_url=self.base, verify=ctx, timeout=20, follow_redirects=False)

    def smtp_deliver(
        self, msg: EmailMessage | bytes, rcpt: str = ALICE, mail_from: str = "someone@example.org"
    ) -> None:
        """Deliver as a remote MTA would, over SMTP on port 25's listener."""
        data = msg if isinstance(msg, bytes) else msg.as_bytes(policy=email.policy.SMTP)
        with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=10) as s:
            assert s.sendmail(mail_from, [rcpt], data) == {}

    @contextmanager
    def imap(self, user: str = ALICE) -> Iterator[imaplib.IMAP4_SSL]:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        client = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=ctx, timeout=10)
        try:
            client.login(user, PASSWORD)
            yield client
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass


def message(subject: str, text: str, html: str | None = None, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Someone <someone@example.org>"
    msg["To"] = ALICE
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}-{time.monotonic_ns()}@example.org>"
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def start(tmp_path: Path, tweak: Callable[[dict[str, Any]], None] | None = None) -> WebmailServer:
    https = free_port()

    def config(data: dict[str, Any]) -> None:
        data["listeners"]["test"]["https"] = {"enabled": True, "port": https}
        if tweak is not None:
            tweak(data)

    ca = trustme.CA()
    srv, ports = start_server(tmp_path, ca, config)
    return WebmailServer(srv, {**ports, "https": https}, ca)


def login(client: httpx.Client, user: str = ALICE, password: str = PASSWORD) -> str:
    """Log in; returns the CSRF token of the new session."""
    r = client.post("/webmail/login", data={"username": user, "password": password})
    assert r.status_code == 303, r.text
    page = client.get("/webmail/")
    assert page.status_code == 200
    marker = '<meta name="csrf" content="'
    start_at = page.text.index(marker) + len(marker)
    return page.text[start_at : page.text.index('"', start_at)]


def wait_for(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
