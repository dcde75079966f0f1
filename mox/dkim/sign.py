"""DKIM signing of outgoing messages, RFC 6376 §5, with RSA and ed25519 keys (RFC 8463).

A typed adapter over dkimpy. As mox, a message is signed with every selector in the `sign` list
of the From domain, or of the nearest parent domain we host; each configured header field is
signed once per occurrence and once more ("oversigned", RFC 6376 §5.4.2 and §8.15), so a field
cannot be added or repeated later without breaking the signature.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mox.config.load import LoadedConfig
from mox.dkim.keys import DkimPrivateKey, load_private_key

__all__ = ["KeyCache", "Signer", "dkimpy_key", "header_names", "sign", "signers_for"]

log = logging.getLogger(__name__)


class QuietLogger:
    """dkimpy logs every bad signature at error level; for us those are debug messages."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def debug(self, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)

    info = warning = error = debug

    def isEnabledFor(self, level: int) -> bool:  # logging's name, called by dkimpy
        return self._log.isEnabledFor(logging.DEBUG)


DKIMPY_LOG = QuietLogger(logging.getLogger("mox.dkim.dkimpy"))


@dataclass(frozen=True, slots=True)
class Signer:
    """One selector that signs: `<selector>._domainkey.<domain>`."""

    domain: str
    selector: str
    key: DkimPrivateKey
    headers: tuple[str, ...]
    canonicalization: str = "relaxed/relaxed"  # RFC 6376 §3.4
    oversign: bool = True

    @property
    def algorithm(self) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return b"ed25519-sha256"  # RFC 8463 §3
        return b"rsa-sha256"  # RFC 8301 §3.1: never rsa-sha1


def dkimpy_key(key: DkimPrivateKey) -> bytes:
    """The private key in the form dkimpy takes: PKCS#1 PEM (RSA), base64 seed (ed25519)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw)
    assert isinstance(key, rsa.RSAPrivateKey)  # noqa: S101 (DkimPrivateKey is a union of two)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def header_names(header: bytes) -> list[str]:
    """The field names of a header section, in order (RFC 5322 §2.2)."""
    names = []
    for line in header.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t") and b":" in line:
            names.append(line.split(b":", 1)[0].strip().decode("ascii", "replace").lower())
    return names


def _include(headers: Sequence[str], present: list[str], oversign: bool) -> list[bytes]:
    out: list[bytes] = []
    for name in dict.fromkeys(h.lower() for h in headers):
        count = present.count(name) + (1 if oversign else 0)  # RFC 6376 §5.4.2
        out += [name.encode("ascii")] * count
    return out


def sign(message: bytes, signers: Sequence[Signer]) -> bytes:
    """DKIM-Signature header lines to put in front of the message, one per signer."""
    if not signers:
        return b""
    end = message.find(b"\r\n\r\n")
    present = header_names(message[: end + 2] if end >= 0 else message)
    if present.count("from") != 1:
        raise ValueError("a message to sign needs exactly one From header")  # RFC 6376 §5.4
    out = b""
    for s in signers:
        d = dkimpy.DKIM(message, logger=DKIMPY_LOG, signature_algorithm=s.algorithm)
        include = _include(s.headers, present, s.oversign)
        d.should_not_sign -= set(include)  # the admin chose these fields
        header_c, _, body_c = s.canonicalization.partition("/")
        line: bytes = d.sign(
            s.selector.encode("ascii"),
            s.domain.encode("ascii"),
            dkimpy_key(s.key),
            canonicalize=(header_c.encode(), body_c.encode()),
            include_headers=include,
        )
        out += line if line.endswith(b"\r\n") else line + b"\r\n"
    return out


class KeyCache:
    """Private keys by path, reloaded when the file changes."""

    def __init__(self) -> None:
        self._keys: dict[Path, tuple[float, DkimPrivateKey]] = {}

    def get(self, path: Path) -> DkimPrivateKey:
        mtime = path.stat().st_mtime
        cached = self._keys.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        key = load_private_key(path)
        self._keys[path] = (mtime, key)
        return key


def signers_for(loaded: LoadedConfig, domain: str, cache: KeyCache | None = None) -> list[Signer]:
    """The signing selectors for mail from `domain`: its own, else the nearest parent's (as mox)."""
    cfg = loaded.config
    labels = domain.lower().rstrip(".").split(".")
    for i in range(len(labels)):
        name = ".".join(labels[i:])
        dom = cfg.domains.get(name)
        if dom is None:
            continue
        out = []
        for sel_name in dom.dkim.sign:
            sel = dom.dkim.selectors[sel_name]
            path = loaded.resolve(sel.private_key_file)
            key = cache.get(path) if cache is not None else load_private_key(path)
            out.append(
                Signer(name, sel_name, key, tuple(sel.headers), sel.canonicalization, oversign=True)
            )
        return out
    return []
