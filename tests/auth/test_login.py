"""The Authenticator protocol is structural: any object with a matching login() fits."""

from __future__ import annotations

from mox.auth.login import Authenticator


class _Fixed:
    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        return "mjl" if (username, password) == ("mjl@example.org", "pw") else None


async def test_protocol_fits() -> None:
    auth: Authenticator = _Fixed()
    assert (
        await auth.login("mjl@example.org", "pw", remote_ip="127.0.0.1", protocol="imap") == "mjl"
    )
    assert await auth.login("mjl@example.org", "x", remote_ip="127.0.0.1", protocol="smtp") is None
