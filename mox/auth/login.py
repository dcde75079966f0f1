"""The Authenticator protocol the protocol servers use to check a username and password.

The config-backed implementation lives elsewhere; the SASL mechanisms (RFC 4422) of
mox.auth.sasl produce the username and password passed in here.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Authenticator"]


class Authenticator(Protocol):
    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        """The account name, or None on bad credentials (after a short delay)."""
        ...
