"""A real mox server with an HTTPS listener (and optionally the admin pages) for the admin and
account page tests, and small client helpers."""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trustme

from mox.auth.password import derive_credentials
from tests.conftest import free_port
from tests.serverthread import ServerThread, start_server

ADMIN_PASSWORD = "admin-secret-1"


@dataclass
class WebServer:
    srv: ServerThread
    ports: dict[str, int]
    ca: trustme.CA
    config: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def http(self) -> httpx.Client:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return httpx.Client(base_url=self.base, verify=ctx, timeout=30, follow_redirects=False)

    @contextmanager
    def imap(self, user: str, password: str) -> Iterator[imaplib.IMAP4_SSL]:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        client = imaplib.IMAP4_SSL("127.0.0.1", self.ports["imaps"], ssl_context=ctx, timeout=10)
        try:
            client.login(user, password)
            yield client
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def imap_login_fails(self, user: str, password: str) -> bool:
        try:
            with self.imap(user, password):
                return False
        except imaplib.IMAP4.error:
            return True


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


def start(
    tmp_path: Path, *, admin: bool = True, tweak: Callable[[dict[str, Any]], None] | None = None
) -> WebServer:
    https = free_port()

    def full_tweak(data: dict[str, Any]) -> None:
        data["listeners"]["test"]["https"] = {"enabled": True, "port": https}
        if tweak is not None:
            tweak(data)
        if admin:
            (tmp_path / "adminpasswd").write_text(
                derive_credentials(ADMIN_PASSWORD).to_text() + "\n"
            )
            data["admin_password_file"] = "adminpasswd"

    ca = trustme.CA()
    srv, ports = start_server(tmp_path, ca, full_tweak)
    assert srv.running is not None
    return WebServer(srv, {**ports, "https": https}, ca, tmp_path / "mox.toml")


def admin_login(client: httpx.Client) -> str:
    """Log in to /admin/ with the admin password; returns the session's CSRF token."""
    resp = client.post("/admin/login", data={"password": ADMIN_PASSWORD})
    assert resp.status_code == 303, resp.text
    page = client.get("/admin/")
    assert page.status_code == 200
    return csrf_of(page.text)
