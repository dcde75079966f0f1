"""DKIM verification of every signature on an incoming message, RFC 6376 §6, RFC 8463, RFC 8301.

A typed adapter over dkimpy: the key records are fetched first through our `Resolver` (so each
result knows whether its key was DNSSEC-validated, and DNS failures are temperror rather than
fail), then dkimpy checks the signatures in a worker thread with those records.

Results follow RFC 8601 §2.7.1. As mox's default policy, a signature with `l=` (a body length
limit, RFC 6376 §8.2) or one that does not sign Subject is not accepted ("policy"); beyond mox,
rsa-sha1 signatures are not accepted either (RFC 8301 §3.1).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import dkim as dkimpy
from dkim.crypto import UnparsableKeyError, parse_public_key
from dkim.util import InvalidTagValueList, parse_tag_value

from mox.dkim.sign import DKIMPY_LOG
from mox.dns.records import DkimKey, RecordError
from mox.dns.resolver import DnsError, NotFound, Resolver

__all__ = ["DkimResult", "DkimStatus", "fetch_keys", "is_tlsrpt", "verify"]

DkimStatus = Literal["pass", "fail", "policy", "neutral", "temperror", "permerror"]
log = logging.getLogger(__name__)

MAX_SIGNATURES = 16  # more are not evaluated (a message with that many is not normal mail)
MIN_RSA_BITS = 1024  # RFC 8301 §3.2


@dataclass(frozen=True, slots=True)
class DkimResult:
    status: DkimStatus
    domain: str = ""  # d=
    selector: str = ""  # s=
    algorithm: str = ""  # a=
    identity: str = ""  # i=
    b: str = ""  # the start of b=, to tell signatures apart (RFC 6008 §4)
    key_type: str = ""
    key_bits: int = 0
    authentic: bool = False  # the key record was DNSSEC-validated
    reason: str = ""


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """A fetched key record text, or why there is none."""

    text: str = ""
    authentic: bool = False
    error: DkimStatus | None = None
    reason: str = ""


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


# The first empty line, as dkimpy's rfc822_parse finds it (lines split at "\r?\n").
_BLANK_LINE = re.compile(rb"\n\r?\n")


def header_section(message: bytes) -> bytes:
    """The message up to its first empty line (leaving a first line that is empty for
    rfc822_parse to see): what rfc822_parse reads its header fields from."""
    m = _BLANK_LINE.search(message)
    return message if m is None else message[: m.start() + 1]


def signature_headers(message: bytes, name: bytes = b"dkim-signature") -> list[bytes]:
    """The values of the header fields called `name`, in order."""
    # Only the header section: rfc822_parse splits all it gets into lines first, and this runs
    # four times (DKIM, ARC) on every incoming message: 12 % of the server's CPU for 4 KiB
    # messages, about half for 64 KiB (bench/PROFILE.md). Same fields, same errors.
    headers, _ = dkimpy.rfc822_parse(header_section(message))
    return [v for k, v in headers if k.lower() == name]


def is_tlsrpt(message: bytes) -> bool:
    """A TLS report (RFC 8460 §5.3): its DKIM keys may be limited to s=tlsrpt."""
    end = message.find(b"\r\n\r\n")
    header = message[: end if end >= 0 else len(message)].lower()
    pattern = rb"(?:^|\n)content-type:[^\n]*(?:\n[ \t][^\n]*)*report-type=\"?tlsrpt"
    return re.search(pattern, header) is not None


async def fetch_keys(
    resolver: Resolver, names: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], KeyLookup]:
    """The key records at `<selector>._domainkey.<domain>` for each (selector, domain)."""

    async def one(selector: str, domain: str) -> KeyLookup:
        name = f"{selector}._domainkey.{domain}"
        try:
            answer = await resolver.query(name, "TXT")
        except NotFound as exc:
            # RFC 6376 §6.1.2: no key record is PERMFAIL
            return KeyLookup(authentic=exc.authentic, error="permerror", reason="no key record")
        except DnsError as exc:
            return KeyLookup(error="temperror", reason=str(exc))  # RFC 6376 §6.1.2 TEMPFAIL
        records = [r for r in answer.records if "p=" in r]
        if len(records) != 1:
            reason = "no key record" if not records else "more than one key record"
            return KeyLookup(authentic=answer.authentic, error="permerror", reason=reason)
        return KeyLookup(records[0], answer.authentic)

    unique = list(dict.fromkeys(names))
    found = await asyncio.gather(*(one(s, d) for s, d in unique))
    return dict(zip(unique, found, strict=True))


def _key_bits(record: DkimKey) -> int:
    if record.key_type == "ed25519":
        return 256 if len(record.public_key) == 32 else 0  # RFC 8463 §4
    try:  # SubjectPublicKeyInfo (RFC 6376 §3.6.1), or a bare RSAPublicKey as some publish
        parsed = parse_public_key(record.public_key)
    except (UnparsableKeyError, ValueError, IndexError):
        return 0
    return int(dkimpy.bitsize(parsed["modulus"]))


def _check_one(
    message: bytes, idx: int, sig: dict[bytes, bytes], key: KeyLookup, tlsrpt: bool
) -> DkimResult:
    """One signature, after its tags were parsed and its key fetched (runs in a thread)."""
    base = DkimResult(
        "permerror",
        domain=_text(sig.get(b"d", b"")).lower(),
        selector=_text(sig.get(b"s", b"")),
        algorithm=_text(sig.get(b"a", b"")).lower(),
        identity=_text(sig.get(b"i", b"")),
        b=re.sub(r"\s+", "", _text(sig.get(b"b", b"")))[:12],
        authentic=key.authentic,
    )
    try:
        dkimpy.validate_signature_fields(sig)  # RFC 6376 §6.1.1
    except dkimpy.DKIMException as exc:
        return _with(base, "permerror", str(exc))
    if base.algorithm == "rsa-sha1":
        return _with(base, "policy", "rsa-sha1 is not accepted (RFC 8301 §3.1)")
    if b"l" in sig:
        return _with(base, "policy", "l= (body length limit) is not accepted")
    signed = [h.strip().lower() for h in _text(sig.get(b"h", b"")).split(":")]
    if "subject" not in signed:
        return _with(base, "policy", "Subject is not signed")
    if key.error is not None:
        return _with(base, key.error, key.reason)
    try:
        record = DkimKey.parse(key.text)
    except RecordError as exc:
        return _with(base, "permerror", str(exc))  # RFC 6376 §6.1.2: key syntax error
    if not record.public_key:
        return _with(base, "permerror", "key revoked")  # RFC 6376 §3.6.1 empty p=
    if record.hashes and "sha256" not in record.hashes:
        return _with(base, "permerror", "key does not allow sha256")  # RFC 6376 §3.6.1 h=
    if record.key_type not in ("rsa", "ed25519"):
        return _with(base, "permerror", f"unknown key type {record.key_type!r}")  # §3.6.1 k=
    bits = _key_bits(record)
    if not bits:
        return _with(base, "permerror", "public key does not parse")
    base = _with(base, "permerror", "", key_type=record.key_type, key_bits=bits)
    if record.key_type == "rsa" and bits < MIN_RSA_BITS:
        return _with(base, "permerror", f"RSA key of {bits} bits is too small (RFC 8301 §3.2)")
    key_only_tlsrpt = bool(record.services) and "email" not in record.services
    key_only_tlsrpt = key_only_tlsrpt and "*" not in record.services
    if key_only_tlsrpt and not (tlsrpt and "tlsrpt" in record.services):
        return _with(base, "permerror", "key is not for email (s= in the key record)")

    def dnsfunc(name: Any, timeout: int = 5) -> bytes:
        return key.text.encode("utf-8")

    d = dkimpy.DKIM(message, logger=DKIMPY_LOG, minkey=MIN_RSA_BITS, tlsrpt=tlsrpt)
    try:
        ok = d.verify(idx=idx, dnsfunc=dnsfunc)
    except dkimpy.KeyFormatError as exc:
        return _with(base, "permerror", str(exc))
    except dkimpy.DKIMException as exc:
        return _with(base, "fail", str(exc))  # body hash mismatch and the like
    if ok:
        return _with(base, "pass", "")
    return _with(base, "fail", "signature did not verify")  # RFC 6376 §6.1.3


def _with(r: DkimResult, status: DkimStatus, reason: str, **kw: Any) -> DkimResult:
    return replace(r, status=status, reason=reason, **kw)


async def verify(resolver: Resolver, message: bytes) -> list[DkimResult]:
    """A result for every DKIM-Signature of the message, topmost first (empty: unsigned)."""
    values = signature_headers(message)[:MAX_SIGNATURES]
    if not values:
        return []  # unsigned: no key lookups, no worker thread
    parsed: list[dict[bytes, bytes] | None] = []
    for value in values:
        try:
            parsed.append(parse_tag_value(value))  # RFC 6376 §3.2
        except InvalidTagValueList:
            parsed.append(None)
    names = [
        (_text(p[b"s"]), _text(p[b"d"]).lower())
        for p in parsed
        if p is not None and b"s" in p and b"d" in p
    ]
    keys = await fetch_keys(resolver, names)
    tlsrpt = is_tlsrpt(message)

    def check_all() -> list[DkimResult]:
        out = []
        for idx, sig in enumerate(parsed):
            if sig is None:
                out.append(DkimResult("permerror", reason="malformed DKIM-Signature"))
                continue
            key = keys.get((_text(sig.get(b"s", b"")), _text(sig.get(b"d", b"")).lower()))
            try:
                out.append(
                    _check_one(message, idx, sig, key or KeyLookup(error="permerror"), tlsrpt)
                )
            except Exception:  # a dkimpy fault on odd input is the signature's problem, logged
                log.exception("dkim verification failed unexpectedly")
                out.append(DkimResult("permerror", reason="signature could not be evaluated"))
        return out

    return await asyncio.to_thread(check_all)
