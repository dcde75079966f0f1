"""Sans-IO SASL (RFC 4422) server mechanisms: bytes in, a challenge or a result out.

PLAIN is RFC 4616; LOGIN is draft-murchison-sasl-login-00. Base64 and the "*" cancel are the
transport's job (RFC 4954 for SMTP, RFC 9051 §6.2.2 for IMAP), not the mechanism's.

Usage: ``mech = MECHANISMS["PLAIN"](); r = mech.start(initial_response)``, then while ``r`` is a
SaslChallenge send it and feed the client's answer to ``mech.step(data)``. SaslError on
malformed input or a step after the exchange finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

__all__ = [
    "MECHANISMS",
    "LoginServer",
    "PlainServer",
    "SaslChallenge",
    "SaslDone",
    "SaslError",
    "SaslServer",
    "SaslVerified",
]


class SaslError(Exception):
    """The client's input is malformed or out of order; the exchange has failed."""


@dataclass(frozen=True, slots=True)
class SaslChallenge:
    data: bytes


@dataclass(frozen=True, slots=True, repr=False)
class SaslDone:
    username: str
    password: str

    def __repr__(self) -> str:
        return f"SaslDone(username={self.username!r}, password=<redacted>)"


@dataclass(frozen=True, slots=True)
class SaslVerified:
    """The mechanism itself checked the client's proof (CRAM-MD5, SCRAM): no password to verify."""

    username: str
    ok: bool


SaslResult = SaslChallenge | SaslDone


class SaslServer(Protocol):
    name: ClassVar[str]

    def start(self, initial_response: bytes | None) -> SaslResult: ...

    def step(self, data: bytes) -> SaslResult: ...


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError(f"{what} is not valid UTF-8") from None


class PlainServer:
    """RFC 4616: message = [authzid] NUL authcid NUL passwd."""

    name: ClassVar[str] = "PLAIN"

    def __init__(self) -> None:
        self._state = "new"

    def start(self, initial_response: bytes | None) -> SaslResult:
        if self._state != "new":
            raise SaslError("exchange already started")
        if initial_response is None:
            # RFC 4422 §5: without an initial response the server sends an empty challenge.
            self._state = "wait"
            return SaslChallenge(b"")
        return self._finish(initial_response)

    def step(self, data: bytes) -> SaslResult:
        if self._state != "wait":
            raise SaslError("unexpected data")
        return self._finish(data)

    def _finish(self, message: bytes) -> SaslDone:
        self._state = "done"
        parts = message.split(b"\x00")
        if len(parts) != 3:  # RFC 4616 §2: exactly two NUL separators
            raise SaslError("malformed PLAIN message, need authzid NUL authcid NUL passwd")
        authzid, authcid, passwd = (_utf8(p, "PLAIN message") for p in parts)
        if not authcid or not passwd:  # RFC 4616 §2: authcid and passwd are 1*SAFE
            raise SaslError("empty username or password")
        # RFC 4616 §2: the server decides whether authcid may act as authzid; we only allow
        # acting as oneself.
        if authzid and authzid != authcid:
            raise SaslError("authorization identity must be empty or equal the username")
        return SaslDone(authcid, passwd)


class LoginServer:
    """draft-murchison-sasl-login: challenges "Username:" then "Password:"."""

    name: ClassVar[str] = "LOGIN"

    def __init__(self) -> None:
        self._state = "new"
        self._username = ""

    def start(self, initial_response: bytes | None) -> SaslResult:
        if self._state != "new":
            raise SaslError("exchange already started")
        if initial_response is None:
            self._state = "username"
            return SaslChallenge(b"Username:")  # draft-murchison-sasl-login §2.1
        # Clients may send the username as initial response (e.g. "AUTH LOGIN dXNlcg==").
        return self._username_in(initial_response)

    def step(self, data: bytes) -> SaslResult:
        if self._state == "username":
            return self._username_in(data)
        if self._state == "password":
            self._state = "done"
            password = _utf8(data, "password")
            if not password:
                raise SaslError("empty password")
            return SaslDone(self._username, password)
        raise SaslError("unexpected data")

    def _username_in(self, data: bytes) -> SaslResult:
        username = _utf8(data, "username")
        if not username or "\x00" in username:
            self._state = "done"
            raise SaslError("empty or malformed username")
        self._username = username
        self._state = "password"
        return SaslChallenge(b"Password:")  # draft-murchison-sasl-login §2.1


# Mechanism name (as advertised, RFC 4422 §3.1) -> server factory. CRAM-MD5 and SCRAM-SHA-*
# are added here once they exist; they will take a credentials lookup.
MECHANISMS: dict[str, Callable[[], SaslServer]] = {
    PlainServer.name: PlainServer,
    LoginServer.name: LoginServer,
}
