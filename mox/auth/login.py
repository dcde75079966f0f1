"""The Authenticator protocol the protocol servers use to check a username and password.

The config-backed implementation lives elsewhere; the SASL mechanisms (RFC 4422) of
mox.auth.sasl produce the username and password passed in here.
"""

from __future__ import annotations

from typing import Protocol

from mox.auth.password import Credentials

__all__ = ["Authenticator"]


class Authenticator(Protocol):
    async def login(
        self, username: str, password: str, *, remote_ip: str, protocol: str
    ) -> str | None:
        """The account name, or None on bad credentials (after a short delay)."""
        ...

    def throttled(self, remote_ip: str) -> bool:
        """Whether this IP had too many failed logins recently (then refuse early)."""
        ...

    def credentials(self, username: str) -> Credentials | None:
        """Stored secrets for a login name, for mechanisms that check proofs (SCRAM, CRAM-MD5)."""
        ...

    async def conclude(
        self, username: str, ok: bool, *, remote_ip: str, protocol: str
    ) -> str | None:
        """Account name after a mechanism verified a proof; applies the same failure
        accounting, delay and throttling as `login`. None when refused."""
        ...
