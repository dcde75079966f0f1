"""Stored credentials of an account: never the plaintext password, only what each mechanism needs.

- scrypt (RFC 7914) hash, for PLAIN/LOGIN (RFC 4616, draft-murchison-sasl-login) and HTTP basic.
- SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 §3, RFC 7677) salt, iteration count, StoredKey and
  ServerKey.
- CRAM-MD5 (RFC 2195): the HMAC-MD5 (RFC 2104 §2) inner and outer hash states after absorbing
  key XOR ipad and key XOR opad, as the Go mox stores them; HMAC-MD5(password, challenge) is
  computed from those with a small pure-Python MD5 (RFC 1321) compression function.

Passwords are normalised to NFC first, a subset of SASLprep (RFC 4013) / PRECIS (RFC 8265).

Successful scrypt verifications are remembered for a few minutes (``_VerifiedCache``: an HMAC tag
under a per-process random key, per credential, compared in constant time), so repeated logins do
not each pay scrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import struct
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass

__all__ = [
    "CramMD5Secret",
    "Credentials",
    "ScramSecret",
    "derive_credentials",
    "forget_verified_passwords",
    "hmac_md5_from_states",
    "md5_state_after_block",
    "normalize_password",
    "scram_secret",
    "verify_password",
]

TEXT_PREFIX = "mox-cred1"

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_LEN = 32
SALT_LEN = 16

SCRAM_SHA1_ITERATIONS = 4096  # RFC 5802 §5.1: at least 4096
SCRAM_SHA256_ITERATIONS = 8192  # RFC 7677 §4: at least 4096; a bit more since SHA-256 is cheap
_MAX_ITERATIONS = 10_000_000
_MAX_SCRYPT_N = 2**20

_SCRAM_HASHES = {"sha1": 20, "sha256": 32}


def normalize_password(password: str) -> bytes:
    """NFC-normalised UTF-8 bytes of the password (the SASLprep-ish step)."""
    return unicodedata.normalize("NFC", password).encode("utf-8")


# --- SCRAM (RFC 5802 §3) ---


@dataclass(frozen=True, slots=True, repr=False)
class ScramSecret:
    hash_name: str  # "sha1" or "sha256"
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:
        return f"ScramSecret({self.hash_name}, iterations={self.iterations}, <redacted>)"


def scram_secret(hash_name: str, password: str, salt: bytes, iterations: int) -> ScramSecret:
    pw = normalize_password(password)
    # RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i); Hi is PBKDF2 with HMAC.
    salted = hashlib.pbkdf2_hmac(hash_name, pw, salt, iterations)
    # RFC 5802 §3: ClientKey := HMAC(SaltedPassword, "Client Key"); StoredKey := H(ClientKey).
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    # RFC 5802 §3: ServerKey := HMAC(SaltedPassword, "Server Key").
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    return ScramSecret(hash_name, salt, iterations, stored_key, server_key)


# --- MD5 compression (RFC 1321 §3.4), for CRAM-MD5 from stored HMAC states ---

_M32 = 0xFFFFFFFF
_MD5_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)  # RFC 1321 §3.3
_MD5_S = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_MD5_K = [int(abs(math.sin(i + 1)) * 2**32) & _M32 for i in range(64)]  # RFC 1321 §3.4 T[i]

Md5State = tuple[int, int, int, int]


def _md5_compress(state: Md5State, block: bytes) -> Md5State:
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        if i < 16:
            f = (b & c) | (~b & d)  # F
            g = i
        elif i < 32:
            f = (d & b) | (~d & c)  # G
            g = (5 * i + 1) % 16
        elif i < 48:
            f = b ^ c ^ d  # H
            g = (3 * i + 5) % 16
        else:
            f = c ^ (b | (~d & _M32))  # I
            g = (7 * i) % 16
        f = (f + a + _MD5_K[i] + x[g]) & _M32
        a, d, c = d, c, b
        b = (b + ((f << _MD5_S[i]) | (f >> (32 - _MD5_S[i])))) & _M32
    return (
        (state[0] + a) & _M32,
        (state[1] + b) & _M32,
        (state[2] + c) & _M32,
        (state[3] + d) & _M32,
    )


def _md5_pack(state: Md5State) -> bytes:
    return struct.pack("<4I", *state)


def _md5_unpack(data: bytes) -> Md5State:
    a, b, c, d = struct.unpack("<4I", data)
    return (a, b, c, d)


def md5_state_after_block(block: bytes) -> bytes:
    """The 16-byte MD5 state after absorbing one 64-byte block from the initial state."""
    if len(block) != 64:
        raise ValueError("MD5 block must be 64 bytes")
    return _md5_pack(_md5_compress(_MD5_INIT, block))


def _md5_continue(state: bytes, data: bytes) -> bytes:
    """MD5 digest of (the 64-byte block that produced state) + data."""
    st = _md5_unpack(state)
    total = 64 + len(data)
    # RFC 1321 §3.1-§3.2: pad with 0x80, zeros to 56 mod 64, then the bit length (little endian).
    padded = (
        data
        + b"\x80"
        + b"\x00" * ((55 - total) % 64)
        + struct.pack("<Q", (total * 8) & (2**64 - 1))
    )
    for i in range(0, len(padded), 64):
        st = _md5_compress(st, padded[i : i + 64])
    return _md5_pack(st)


def hmac_md5_from_states(inner: bytes, outer: bytes, message: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104 §2) from the states after K XOR ipad and K XOR opad."""
    return _md5_continue(outer, _md5_continue(inner, message))


@dataclass(frozen=True, slots=True, repr=False)
class CramMD5Secret:
    inner: bytes  # MD5 state after K XOR ipad
    outer: bytes  # MD5 state after K XOR opad

    def __repr__(self) -> str:
        return "CramMD5Secret(<redacted>)"

    @classmethod
    def derive(cls, password: str) -> CramMD5Secret:
        key = normalize_password(password)
        if len(key) > 64:
            key = hashlib.md5(key).digest()  # noqa: S324 -- RFC 2104 §2: long keys are hashed
        key = key.ljust(64, b"\x00")  # RFC 2104 §2 (1): pad K with zeros to B=64 bytes
        ipad = bytes(k ^ 0x36 for k in key)  # RFC 2104 §2: ipad = 0x36 repeated
        opad = bytes(k ^ 0x5C for k in key)  # RFC 2104 §2: opad = 0x5C repeated
        return cls(md5_state_after_block(ipad), md5_state_after_block(opad))

    def hmac(self, challenge: bytes) -> bytes:
        """HMAC-MD5(password, challenge), the RFC 2195 §2 digest, without the password."""
        return hmac_md5_from_states(self.inner, self.outer, challenge)


# --- Credentials ---


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    scrypt_n: int
    scrypt_r: int
    scrypt_p: int
    scrypt_salt: bytes
    scrypt_hash: bytes
    scram_sha1: ScramSecret
    scram_sha256: ScramSecret
    cram_md5: CramMD5Secret

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    def to_text(self) -> str:
        """One line: "mox-cred1 scrypt$N$r$p$salt$hash scram-sha-1$i$salt$stored$server ..."."""
        b64 = _b64
        parts = [
            TEXT_PREFIX,
            "$".join(
                (
                    "scrypt",
                    str(self.scrypt_n),
                    str(self.scrypt_r),
                    str(self.scrypt_p),
                    b64(self.scrypt_salt),
                    b64(self.scrypt_hash),
                )
            ),
        ]
        for label, s in (("scram-sha-1", self.scram_sha1), ("scram-sha-256", self.scram_sha256)):
            parts.append(
                "$".join(
                    (label, str(s.iterations), b64(s.salt), b64(s.stored_key), b64(s.server_key))
                )
            )
        parts.append("$".join(("cram-md5", b64(self.cram_md5.inner), b64(self.cram_md5.outer))))
        return " ".join(parts)

    @classmethod
    def from_text(cls, text: str) -> Credentials:
        """Parse to_text() output; ValueError with the reason on anything else."""
        if not isinstance(text, str):
            raise ValueError("credentials must be text")
        words = text.strip().split(" ")
        if not words or words[0] != TEXT_PREFIX:
            raise ValueError(f"credentials do not start with {TEXT_PREFIX!r}")
        if len(words) != 5:
            raise ValueError(
                f"credentials need 4 sections after {TEXT_PREFIX!r}, got {len(words) - 1}"
            )
        sc = _fields(words[1], "scrypt", 6)
        n, r, p = _int(sc[1], "scrypt N"), _int(sc[2], "scrypt r"), _int(sc[3], "scrypt p")
        if n < 2 or n > _MAX_SCRYPT_N or n & (n - 1):
            raise ValueError("scrypt N must be a power of two between 2 and 2**20")
        if not 1 <= r <= 64 or not 1 <= p <= 16:
            raise ValueError("scrypt r or p out of range")
        salt = _unb64(sc[4], "scrypt salt", min_len=8)
        digest = _unb64(sc[5], "scrypt hash", exact=SCRYPT_LEN)
        sha1 = _scram_from_fields(_fields(words[2], "scram-sha-1", 5), "sha1")
        sha256 = _scram_from_fields(_fields(words[3], "scram-sha-256", 5), "sha256")
        cf = _fields(words[4], "cram-md5", 3)
        cram = CramMD5Secret(
            _unb64(cf[1], "cram-md5 inner state", exact=16),
            _unb64(cf[2], "cram-md5 outer state", exact=16),
        )
        return cls(n, r, p, salt, digest, sha1, sha256, cram)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str, *, exact: int | None = None, min_len: int = 1) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"{what}: bad base64") from None
    if exact is not None and len(data) != exact:
        raise ValueError(f"{what}: expected {exact} bytes, got {len(data)}")
    if len(data) < min_len:
        raise ValueError(f"{what}: too short")
    return data


_DIGITS = re.compile(r"[0-9]{1,9}")


def _int(text: str, what: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"{what}: not a number: {text[:20]!r}")
    return int(text)


def _fields(word: str, label: str, count: int) -> list[str]:
    fields = word.split("$")
    if fields[0] != label:
        raise ValueError(f"expected section {label!r}, got {fields[0][:20]!r}")
    if len(fields) != count:
        raise ValueError(f"section {label!r} needs {count - 1} fields, got {len(fields) - 1}")
    return fields


def _scram_from_fields(fields: list[str], hash_name: str) -> ScramSecret:
    iterations = _int(fields[1], f"{fields[0]} iterations")
    if not 4096 <= iterations <= _MAX_ITERATIONS:  # RFC 5802 §5.1, RFC 7677 §4: at least 4096
        raise ValueError(f"{fields[0]} iterations out of range")
    size = _SCRAM_HASHES[hash_name]
    return ScramSecret(
        hash_name,
        _unb64(fields[2], f"{fields[0]} salt"),
        iterations,
        _unb64(fields[3], f"{fields[0]} stored key", exact=size),
        _unb64(fields[4], f"{fields[0]} server key", exact=size),
    )


def _scrypt(pw: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pw, salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LEN, maxmem=256 * r * n * p + 2**20
    )


def derive_credentials(password: str) -> Credentials:
    """All secrets for a new password; the plaintext is not kept."""
    pw = normalize_password(password)
    salt = secrets.token_bytes(SALT_LEN)
    return Credentials(
        scrypt_n=SCRYPT_N,
        scrypt_r=SCRYPT_R,
        scrypt_p=SCRYPT_P,
        scrypt_salt=salt,
        scrypt_hash=_scrypt(pw, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P),
        scram_sha1=scram_secret(
            "sha1", password, secrets.token_bytes(SALT_LEN), SCRAM_SHA1_ITERATIONS
        ),
        scram_sha256=scram_secret(
            "sha256", password, secrets.token_bytes(SALT_LEN), SCRAM_SHA256_ITERATIONS
        ),
        cram_md5=CramMD5Secret.derive(password),
    )


class _VerifiedCache:
    """Recently verified passwords, so that a client logging in again and again (IMAP clients open
    several connections, and reconnect) does not pay scrypt (~50 ms and 16 MiB) every time; what
    Dovecot's auth_cache does.

    Per stored credential (its scrypt salt and hash: a changed password is a new credential, so
    entries of the old one can never match again), an HMAC-SHA256 tag of the password under a
    random key of this process, never the password itself. A hit needs the tag to match, compared
    in constant time; only successful verifications are remembered, so a wrong password always
    costs a full scrypt. Entries expire after ``ttl`` seconds; at most ``size`` are kept (least
    recently used go first). Thread-safe: verification runs in worker threads.
    """

    def __init__(self, size: int = 1024, ttl: float = 300.0) -> None:
        self.size = size
        self.ttl = ttl
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _ident(creds: Credentials) -> bytes:
        return b"%d$%d$%d$" % (creds.scrypt_n, creds.scrypt_r, creds.scrypt_p) + (
            creds.scrypt_salt + creds.scrypt_hash
        )

    def _tag(self, ident: bytes, pw: bytes) -> bytes:
        return hmac.digest(self._key, ident + b"\x00" + pw, "sha256")

    def hit(self, creds: Credentials, pw: bytes) -> bool:
        ident = self._ident(creds)
        tag = self._tag(ident, pw)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(ident)
            if entry is None:
                return False
            if entry[1] <= now:
                del self._entries[ident]
                return False
            self._entries.move_to_end(ident)
        return hmac.compare_digest(entry[0], tag)

    def add(self, creds: Credentials, pw: bytes) -> None:
        if self.size <= 0 or self.ttl <= 0:
            return
        ident = self._ident(creds)
        entry = (self._tag(ident, pw), time.monotonic() + self.ttl)
        with self._lock:
            self._entries[ident] = entry
            self._entries.move_to_end(ident)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


VERIFIED = _VerifiedCache()


def forget_verified_passwords() -> None:
    """Drop every remembered verification (for instance after passwords were changed)."""
    VERIFIED.clear()


def verify_password(creds: Credentials, password: str, *, use_cache: bool = True) -> bool:
    """Whether password matches the scrypt hash; constant time in the comparison. A password
    verified in the last few minutes against these same credentials is accepted without running
    scrypt again (``_VerifiedCache``)."""
    pw = normalize_password(password)
    if use_cache and VERIFIED.hit(creds, pw):
        return True
    digest = _scrypt(pw, creds.scrypt_salt, creds.scrypt_n, creds.scrypt_r, creds.scrypt_p)
    ok = hmac.compare_digest(digest, creds.scrypt_hash)
    if ok and use_cache:
        VERIFIED.add(creds, pw)
    return ok
