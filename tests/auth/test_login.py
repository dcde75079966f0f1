"""The Authenticator protocol is structural: any object with the three methods fits."""

from __future__ import annotations

from mox.auth.login import Authenticator
from mox.auth.password import Credentials, derive_credentials

CREDS = derive_credentials("pw")


class _Fixed:
    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        return "mjl" if (username, password) == ("mjl@example.org", "pw") else None

    def throttled(self, remote_ip: str) -> bool:
        return remote_ip == "192.0.2.1"

    def credentials(self, username: str) -> Credentials | None:
        return CREDS if username == "mjl@example.org" else None

    async def conclude(
        self, username: str, ok: bool, *, remote_ip: str, protocol: str
    ) -> str | None:
        return "mjl" if ok and username == "mjl@example.org" else None


async def test_protocol_fits() -> None:
    auth: Authenticator = _Fixed()
    assert (
        await auth.login("mjl@example.org", "pw", remote_ip="127.0.0.1", protocol="imap") == "mjl"
    )
    assert await auth.login("mjl@example.org", "x", remote_ip="127.0.0.1", protocol="smtp") is None
    assert auth.credentials("other@example.org") is None
    assert auth.throttled("192.0.2.1")
    assert await auth.conclude("mjl@example.org", True, remote_ip="::1", protocol="imap") == "mjl"
