"""SCRAM-SHA-1 and SCRAM-SHA-256, with the -PLUS channel-binding variants: server side, sans-IO.

RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256), RFC 5929 (tls-unique) and RFC 9266 (tls-exporter).
Also CRAM-MD5 (RFC 2195). The server verifies the client's proof against the stored StoredKey and
ServerKey; no mechanism here needs the plaintext password.

Usage: ``mech = ScramServer("sha256", plus=True, ctx)``, ``r = mech.start(initial)``; send each
``SaslChallenge``; a ``SaslVerified`` ends the exchange (``ok`` False on a wrong proof, including
for unknown users, which get a made-up salt so their absence is not revealed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from mox.auth.password import Credentials, ScramSecret
from mox.auth.sasl import SaslChallenge, SaslError, SaslVerified

__all__ = ["CramMD5Server", "SaslContext", "ScramServer"]

_FAKE_KEY = secrets.token_bytes(32)  # per process: made-up salts for unknown users


@dataclass(frozen=True, slots=True)
class SaslContext:
    """What a mechanism may use: the credentials lookup, TLS channel bindings, our host name."""

    lookup: Callable[[str], Credentials | None]
    # RFC 5056 channel-binding type -> data, for this connection ("tls-exporter", "tls-unique").
    channel_bindings: dict[str, bytes] = field(default_factory=dict)
    hostname: str = "localhost"
    # Whether -PLUS variants were announced (then a "y" GS2 flag is a downgrade, RFC 5802 §6).
    plus_advertised: bool = False


def _b64d(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SaslError(f"{what} is not valid base64") from None


def _saslname(text: str) -> str:
    # RFC 5802 §5.1: "=2C" and "=3D" encode "," and "="; any other "=" is an error.
    out = []
    i = 0
    while i < len(text):
        if text[i] == "=":
            code = text[i : i + 3]
            if code == "=2C":
                out.append(",")
            elif code == "=3D":
                out.append("=")
            else:
                raise SaslError("bad escape in username")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _attrs(message: str) -> list[tuple[str, str]]:
    out = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=":
            raise SaslError(f"malformed attribute {part[:20]!r}")
        out.append((part[0], part[2:]))
    return out


class ScramServer:
    """One SCRAM exchange (RFC 5802 §3, §5, §7)."""

    name: ClassVar[str] = "SCRAM"

    def __init__(self, hash_name: str, plus: bool, ctx: SaslContext) -> None:
        self.hash_name = hash_name
        self.plus = plus
        self.ctx = ctx
        self._state = "new"
        self._username = ""
        self._secret: ScramSecret | None = None
        self._known = False
        self._gs2_header = ""
        self._cbind_data = b""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def start(self, initial_response: bytes | None) -> SaslChallenge | SaslVerified:
        if self._state != "new":
            raise SaslError("exchange already started")
        if initial_response is None:
            self._state = "first"
            return SaslChallenge(b"")  # RFC 4422 §5: client sends client-first next
        return self._client_first(initial_response)

    def step(self, data: bytes) -> SaslChallenge | SaslVerified:
        if self._state == "first":
            return self._client_first(data)
        if self._state == "final":
            return self._client_final(data)
        if self._state == "ack":
            self._state = "done"
            if data:
                raise SaslError("expected an empty response after server-final")
            return SaslVerified(self._username, True)
        raise SaslError("unexpected data")

    def _fake_secret(self, username: str) -> ScramSecret:
        digest = hmac.digest(_FAKE_KEY, username.encode(), "sha256")
        size = 20 if self.hash_name == "sha1" else 32
        iterations = 4096 if self.hash_name == "sha1" else 8192
        return ScramSecret(self.hash_name, digest[:16], iterations, b"\0" * size, b"\0" * size)

    def _client_first(self, data: bytes) -> SaslChallenge:
        self._state = "final"
        try:
            message = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslError("client-first-message is not UTF-8") from None
        # RFC 5802 §7: gs2-header = gs2-cbind-flag "," [ authzid ] ","
        parts = message.split(",", 2)
        if len(parts) != 3:
            raise SaslError("malformed client-first-message")
        flag, authzid, bare = parts
        if flag.startswith("p="):
            cb_type = flag[2:]
            if not self.plus:
                raise SaslError("channel binding requested with a non-PLUS mechanism")
            if cb_type not in self.ctx.channel_bindings:
                raise SaslError(f"channel binding type {cb_type!r} not supported here")
            self._cbind_data = self.ctx.channel_bindings[cb_type]
        elif flag in ("n", "y"):
            if self.plus:
                raise SaslError("-PLUS mechanism requires channel binding")
            if flag == "y" and self.ctx.plus_advertised:
                # RFC 5802 §6: the client thinks we lack channel binding, but we announced it.
                raise SaslError("channel binding downgrade detected")
        else:
            raise SaslError("bad gs2 channel-binding flag")
        if authzid and not authzid.startswith("a="):
            raise SaslError("bad authzid in gs2 header")
        self._gs2_header = f"{flag},{authzid},"
        attrs = _attrs(bare)
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r":
            raise SaslError("client-first-message needs n= and r=")
        if attrs[0][1] == "" or attrs[1][1] == "":
            raise SaslError("empty username or nonce")
        if any(k == "m" for k, _ in attrs):  # RFC 5802 §5.1: reserved mandatory extension
            raise SaslError("unsupported mandatory extension")
        self._username = _saslname(attrs[0][1])
        if authzid and _saslname(authzid[2:]) != self._username:
            raise SaslError("authorization identity must equal the username")
        client_nonce = attrs[1][1]
        creds = self.ctx.lookup(self._username)
        if creds is not None:
            self._secret = creds.scram_sha1 if self.hash_name == "sha1" else creds.scram_sha256
            self._known = True
        else:
            self._secret = self._fake_secret(self._username)
        self._client_first_bare = bare
        self._nonce = client_nonce + base64.b64encode(secrets.token_bytes(18)).decode()
        salt = base64.b64encode(self._secret.salt).decode()
        # RFC 5802 §5.1: server-first-message = nonce "," salt "," iteration-count
        self._server_first = f"r={self._nonce},s={salt},i={self._secret.iterations}"
        return SaslChallenge(self._server_first.encode())

    def _client_final(self, data: bytes) -> SaslChallenge | SaslVerified:
        self._state = "done"
        if self._secret is None:
            raise SaslError("client-final-message before client-first-message")
        try:
            message = data.decode("ascii")
        except UnicodeDecodeError:
            raise SaslError("client-final-message is not ASCII") from None
        attrs = _attrs(message)
        if len(attrs) < 3 or attrs[0][0] != "c" or attrs[1][0] != "r" or attrs[-1][0] != "p":
            raise SaslError("client-final-message needs c=, r= and p=")
        # RFC 5802 §5.1: c= is base64 of the gs2 header plus the channel-binding data.
        expected_c = self._gs2_header.encode() + self._cbind_data
        if not hmac.compare_digest(_b64d(attrs[0][1], "channel binding"), expected_c):
            raise SaslError("channel binding mismatch")
        if attrs[1][1] != self._nonce:
            raise SaslError("nonce mismatch")
        proof = _b64d(attrs[-1][1], "proof")
        without_proof = message[: message.rindex(",p=")]
        # RFC 5802 §3: AuthMessage := client-first-bare "," server-first "," client-final-w/o-proof
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        h = self.hash_name
        client_signature = hmac.digest(self._secret.stored_key, auth_message, h)
        if len(proof) != len(client_signature):
            return SaslVerified(self._username, False)
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        ok = self._known and hmac.compare_digest(
            hashlib.new(h, client_key).digest(), self._secret.stored_key
        )
        if not ok:
            return SaslVerified(self._username, False)
        server_signature = hmac.digest(self._secret.server_key, auth_message, h)
        self._state = "ack"
        # RFC 5802 §5.1: server-final-message = verifier ("v=" base64 ServerSignature)
        return SaslChallenge(b"v=" + base64.b64encode(server_signature))


class CramMD5Server:
    """RFC 2195: the server sends a unique challenge; the client answers `user HEX(HMAC-MD5)`."""

    name: ClassVar[str] = "CRAM-MD5"

    def __init__(self, ctx: SaslContext) -> None:
        self.ctx = ctx
        self._state = "new"
        self._challenge = b""

    def start(self, initial_response: bytes | None) -> SaslChallenge:
        if self._state != "new":
            raise SaslError("exchange already started")
        if initial_response:
            raise SaslError("CRAM-MD5 takes no initial response")
        self._state = "wait"
        # RFC 2195 §2: challenge is a msg-id like "<random.timestamp@hostname>"
        token = secrets.randbelow(2**63)
        self._challenge = f"<{token}.{int(time.time())}@{self.ctx.hostname}>".encode()
        return SaslChallenge(self._challenge)

    def step(self, data: bytes) -> SaslVerified:
        if self._state != "wait":
            raise SaslError("unexpected data")
        self._state = "done"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslError("response is not UTF-8") from None
        username, sep, digest = text.rpartition(" ")
        if not sep or not username or len(digest) != 32:
            raise SaslError("expected: username SP 32 hex digits")
        creds = self.ctx.lookup(username)
        if creds is None:
            return SaslVerified(username, False)
        expected = creds.cram_md5.hmac(self._challenge).hex()
        return SaslVerified(username, hmac.compare_digest(expected, digest.lower()))


def new_mechanism(name: str, ctx: SaslContext) -> ScramServer | CramMD5Server | None:
    """A server for a SASL mechanism name that needs stored secrets, or None if unknown."""
    upper = name.upper()
    table = {
        "SCRAM-SHA-256-PLUS": ("sha256", True),
        "SCRAM-SHA-256": ("sha256", False),
        "SCRAM-SHA-1-PLUS": ("sha1", True),
        "SCRAM-SHA-1": ("sha1", False),
    }
    if upper in table:
        hash_name, plus = table[upper]
        if plus and not ctx.channel_bindings:
            return None
        return ScramServer(hash_name, plus, ctx)
    if upper == "CRAM-MD5":
        return CramMD5Server(ctx)
    return None
