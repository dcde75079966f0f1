"""Subject-pass challenge, as mox's `subjectpass/` (reference §1.2 steps 12 and 15).

A sender without reputation whose DMARC-verified message is refused (DNS-blocklisted, or only
mildly spammy) gets a token in the refusal; a message whose Subject holds a valid token for its
From address is accepted. A token is `(pass:<base64url>)`: version byte 0, the creation time
(8 bytes, big-endian Unix seconds) and the first 12 bytes of HMAC-SHA256 (RFC 2104) over those
and the lower-cased From address, keyed with the account's secret. It is valid for the
account's `subject_pass.period`, and never when made in the future.

The secret is 32 random bytes in `subjectpass.key` in the account directory (mode 0600),
created on first use (mox keeps one per address in the account database).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import struct
import time
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path

__all__ = ["EXPLANATION", "generate", "key_for", "token_in_subject", "verify"]

EXPLANATION = (
    "Your message resembles spam. If your email is legitimate, please send it again with the "
    "following added to the email message subject: "
)
VERSION = 0
MAC_LEN = 12
_TOKEN_RE = re.compile(r"\(pass:([A-Za-z0-9_-]{1,64})\)")
KEY_FILE = "subjectpass.key"


def key_for(account_dir: Path) -> bytes:
    """The account's subject-pass secret, created (0600, written atomically) when missing."""
    path = account_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


def _mac(key: bytes, prefix: bytes, address: str) -> bytes:
    h = hmac.new(key, prefix, hashlib.sha256)  # RFC 2104
    h.update(address.lower().encode())
    return h.digest()[:MAC_LEN]


def generate(key: bytes, address: str, now: float | None = None) -> str:
    """A token for `address` (the message From address), as it goes into the subject."""
    stamp = int(time.time() if now is None else now)
    prefix = struct.pack(">BQ", VERSION, stamp)
    raw = prefix + _mac(key, prefix, address)
    return "(pass:" + base64.urlsafe_b64encode(raw).decode().rstrip("=") + ")"


def token_in_subject(subject: str) -> str | None:
    m = _TOKEN_RE.search(subject)
    return m.group(1) if m else None


def verify(key: bytes, address: str, token: str, period: int, now: float | None = None) -> bool:
    """Whether `token` (the part after `pass:`) is valid for `address` now."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return False
    if len(raw) != 9 + MAC_LEN or raw[0] != VERSION:
        return False
    stamp = struct.unpack(">Q", raw[1:9])[0]
    current = time.time() if now is None else now
    if stamp > current + 60 or current - stamp > period:  # a minute of clock skew
        return False
    return hmac.compare_digest(raw[9:], _mac(key, raw[:9], address))


def subject_of(header: bytes) -> str:
    msg = BytesHeaderParser().parsebytes(header, headersonly=True)
    value = msg.get("Subject")
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))  # RFC 2047 encoded words
    except (ValueError, LookupError):
        return str(value)
